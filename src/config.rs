//! A sweep's configuration: documented defaults, `pipelines/*.toml` as diffs from them, CLI overrides.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use flowload_core::{DatasetOptions, OnBadRecord, Transforms, Workers};
pub use flowload_results::{OptimizerKind, RunParams, SEED_MODEL};

use crate::error::{Error, Result};

/// A pipeline file. Every key is optional; what is left out keeps the default shown.
/// Unknown keys are rejected with their name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepConfig {
    /// Name of the sweep; results go to `results/<name>/`. Default: the file's stem.
    pub name: String,
    /// The training data (and its test split when it has one): any of `flowload_core::FORMATS`,
    /// a directory of IDX files, Parquet shards (a file, a directory or a glob), an image
    /// folder, or `synthetic:images=N,channels=C,size=HxW,classes=K,seed=S`.
    pub data: String,
    /// The test split from another source (its training split is used). Default: the data's own.
    pub test_data: Option<String>,
    /// Decode every image to this size, "HxW". Default: images must all have one size.
    pub resize: Option<String>,
    /// Transforms of each training image, in order, after `resize`: any of
    /// `flowload_core::TRANSFORMS` (torchvision's semantics and defaults). Random draws come
    /// from `(seed, epoch, record)`. Default none.
    pub train_transforms: Vec<String>,
    /// Transforms of each test image, the deterministic ones only. Default none.
    pub test_transforms: Vec<String>,
    /// Parquet columns holding the image bytes and the label. Default "image" and "label".
    pub image_column: Option<String>,
    pub label_column: Option<String>,
    /// The class count. Default: 10 for IDX, the class folders, or the largest Parquet label + 1.
    pub classes: Option<usize>,
    /// `fail` stops at the first undecodable record; `skip` counts and lists it. Default `fail`.
    pub on_bad_record: OnBadRecord,
    /// Epochs per run. Default 1.
    pub epochs: u32,
    /// Seed for the per-epoch shuffle. Default 0.
    pub seed: u64,
    /// Shuffle every epoch (PyTorch's `shuffle=True`). Default true.
    pub shuffle: bool,
    /// Drop the last partial batch. Default false, as in PyTorch.
    pub drop_last: bool,
    /// Batches queued ahead per worker, PyTorch's `prefetch_factor`. Default 2.
    pub prefetch: usize,
    /// `--workers auto` adds no worker beyond what this many MiB of batches in flight allow
    /// (each worker holds `prefetch + 1` batches, as u8 and f32). Default: a quarter of the
    /// machine's memory.
    pub prefetch_memory_mib: Option<u64>,
    /// Runs of every grid point, interleaved (point 1, point 2, …, point 1, point 2, …), so
    /// that the report can tell an effect from the spread between repetitions. Default 1.
    pub repeat: u32,
    /// Precomputed statistics (`flowload stats --json` output) instead of the statistics pass.
    pub stats: Option<PathBuf>,
    /// Threads libtorch uses inside each training step (`torch.set_num_threads`). Default:
    /// libtorch's own, one per core. Fewer leaves cores to the decode workers; its OpenMP
    /// threads spin while they wait for each other, so more threads than free cores is slow.
    pub torch_threads: Option<usize>,
    /// `train` trains the grid's models; `null` pulls and touches batches only. Default `train`.
    pub sink: SinkKind,
    /// SGD's momentum (PyTorch's `momentum`); only `sgd` takes it. Default 0.
    pub momentum: f64,
    /// L2 weight decay of every optimizer (`weight_decay`; AdamW's is decoupled). Default 0,
    /// as the seed's Adam; PyTorch's AdamW defaults to 0.01, so give it for AdamW.
    pub weight_decay: f64,
    /// Output directory. Default `results/<name>`.
    pub out: Option<PathBuf>,
    /// How often a training run writes its checkpoint (`<out>/checkpoints/run-NNNN/`), at the
    /// first batch boundary after this much training time, and at each epoch's end: `90s`,
    /// `10m`, `1h`, or seconds; `0` writes none. `--resume` goes on from it. Default `10m`.
    pub checkpoint_every: String,
    /// The grid: every combination of these values is one run, like the seed's RunBuilder.
    pub grid: Grid,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grid {
    /// `seed` (the seed's network, native) or a TorchScript file (`torch.jit.script(m).save(..)`)
    /// taking `[B,C,H,W]` float32 and returning `[B,classes]` logits. Default ["seed"].
    pub model: Vec<String>,
    /// `adam`, `adamw` or `sgd` (libtorch's, as PyTorch's). Default ["adam"], the seed's.
    pub optimizer: Vec<OptimizerKind>,
    /// Learning rates. Default [0.01], the seed's.
    pub lr: Vec<f64>,
    /// Decode workers: 0 builds batches on the consumer's thread; `auto` starts with one and
    /// tunes the count while it runs. Default [1].
    pub workers: Vec<Workers>,
    /// Images per batch. Default [1000], the seed's.
    pub batch_size: Vec<usize>,
    /// `auto` (CUDA when present), `cpu`, `cuda` or `cuda:N`. Default ["auto"].
    pub device: Vec<String>,
    /// `(x/255 − mean)/std` when true, `x/255` alone when false. Default [true].
    pub normalize: Vec<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Train the seed's network on every batch and evaluate on the test split each epoch.
    Train,
    /// Pull every batch, touch it, count images and seconds: the loader alone.
    Null,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            name: "default".into(),
            data: String::new(),
            test_data: None,
            resize: None,
            train_transforms: Vec::new(),
            test_transforms: Vec::new(),
            image_column: None,
            label_column: None,
            classes: None,
            on_bad_record: OnBadRecord::Fail,
            epochs: 1,
            seed: 0,
            shuffle: true,
            drop_last: false,
            prefetch: 2,
            prefetch_memory_mib: None,
            repeat: 1,
            stats: None,
            torch_threads: None,
            sink: SinkKind::Train,
            momentum: 0.0,
            weight_decay: 0.0,
            out: None,
            checkpoint_every: "10m".into(),
            grid: Grid::default(),
        }
    }
}

/// `checkpoint_every` as a duration: `None` for `0` (no checkpoints).
pub fn checkpoint_interval(text: &str) -> Result<Option<std::time::Duration>> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    let seconds = number.trim().parse::<f64>().map(|n| n * scale);
    match seconds {
        Ok(0.0) => Ok(None),
        Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => {
            Ok(Some(std::time::Duration::from_secs_f64(s)))
        }
        _ => Err(Error::config(format!(
            "checkpoint_every: '{text}' is not a duration: give 90s, 10m, 1h, a number of seconds, or 0 for no checkpoints"
        ))),
    }
}

impl Default for Grid {
    fn default() -> Self {
        Grid {
            model: vec![SEED_MODEL.into()],
            optimizer: vec![OptimizerKind::Adam],
            lr: vec![0.01],
            batch_size: vec![1000],
            workers: vec![Workers::Fixed(1)],
            device: vec!["auto".into()],
            normalize: vec![true],
        }
    }
}

/// A number as a person reads it: `0.01`, `1e30` (not thirty-one digits), `1e-7`.
pub fn number(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// A model as a run records it: `seed`, or the file's path written one way (`./m.pt` and
/// `m.pt` are one model), so that `--resume` knows a run however its model was spelled.
pub(crate) fn model_name(spec: &str) -> String {
    if spec == SEED_MODEL {
        return spec.into();
    }
    let path: PathBuf = Path::new(spec)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    path.to_string_lossy().into_owned()
}

impl SweepConfig {
    /// Reads a pipeline file; the name defaults to the file's stem.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        // toml's own text names the line, the column and the key, and shows the line.
        let mut p: SweepConfig = toml::from_str(&text)
            .map_err(|e| Error::config(format!("{}: {}", path.display(), e.to_string().trim())))?;
        if let Some(stem) = path.file_stem()
            && p.name == SweepConfig::default().name
        {
            p.name = stem.to_string_lossy().into_owned();
        }
        Ok(p)
    }

    pub fn out_dir(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| Path::new("results").join(&self.name))
    }

    /// The options the encoded sources take, with `resize` parsed.
    pub fn dataset_options(&self) -> Result<DatasetOptions> {
        let resize = match &self.resize {
            None => None,
            Some(r) => {
                let parsed = r
                    .split_once('x')
                    .and_then(|(h, w)| {
                        Some((
                            h.trim().parse::<usize>().ok()?,
                            w.trim().parse::<usize>().ok()?,
                        ))
                    })
                    .filter(|&(h, w)| h > 0 && w > 0);
                Some(parsed.ok_or_else(|| {
                    Error::config(format!("resize: '{r}' is not HxW (for example 28x28)"))
                })?)
            }
        };
        let transforms = |list: &[String]| {
            let mut specs: Vec<String> = resize
                .map(|(h, w)| format!("resize:{h}x{w}"))
                .into_iter()
                .collect();
            specs.extend(list.iter().cloned());
            Transforms::new(&specs, self.seed)
        };
        let test_transforms = transforms(&self.test_transforms)?;
        let random = test_transforms.random_ones();
        if !random.is_empty() {
            return Err(Error::config(format!(
                "test_transforms: {} draw at random; the evaluation split gets deterministic transforms only ({})",
                random.join(", "),
                flowload_core::TRANSFORMS
                    .iter()
                    .filter(|k| !k.random)
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(DatasetOptions {
            train_transforms: transforms(&self.train_transforms)?,
            test_transforms,
            image_column: self.image_column.clone(),
            label_column: self.label_column.clone(),
            classes: self.classes,
        })
    }

    /// Rejects values no run could use, naming the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::config(m));
        self.dataset_options()?;
        if self.data.is_empty() {
            return bad("no data source: give `data = ...` in the pipeline or --data");
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1");
        }
        if self.repeat == 0 {
            return bad("repeat must be at least 1");
        }
        if self.prefetch_memory_mib == Some(0) {
            return bad(
                "prefetch_memory_mib must be at least 1 (leave it out for a quarter of memory)",
            );
        }
        if self.grid.lr.iter().any(|&lr| !(lr > 0.0 && lr.is_finite())) {
            return bad("grid.lr: learning rates must be positive and finite");
        }
        // The optimizers step float32 parameters: a setting beyond float32's range cannot
        // enter their arithmetic (libtorch aborts on the conversion).
        let beyond = |v: f64| v.abs() > f32::MAX as f64;
        for (key, v) in self.grid.lr.iter().map(|&lr| ("grid.lr", lr)).chain([
            ("momentum", self.momentum),
            ("weight_decay", self.weight_decay),
        ]) {
            if beyond(v) {
                return Err(Error::config(format!(
                    "{key}: {} is beyond float32's range (at most {:e}), which the optimizer computes in",
                    number(v),
                    f32::MAX
                )));
            }
        }
        if self.torch_threads == Some(0) {
            return bad("torch_threads must be at least 1 (leave it out for libtorch's default)");
        }
        if self.grid.batch_size.contains(&0) {
            return bad("grid.batch_size: a batch size of 0 is invalid");
        }
        if !(self.momentum >= 0.0 && self.momentum.is_finite()) {
            return bad("momentum must be 0 or more, and finite");
        }
        if self.grid.optimizer.contains(&OptimizerKind::Other) {
            return bad(
                "grid.optimizer: 'other' marks a Python run's own optimizer; flowload trains with adam, adamw or sgd",
            );
        }
        if self.momentum > 0.0 && !self.grid.optimizer.contains(&OptimizerKind::Sgd) {
            return bad("momentum is SGD's: give --optimizer sgd (Adam and AdamW take none)");
        }
        checkpoint_interval(&self.checkpoint_every)?;
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay must be 0 or more, and finite");
        }
        if self.grid.model.iter().any(|m| m.is_empty()) {
            return bad("grid.model: a model is `seed` or a TorchScript file, not empty");
        }
        for (key, empty) in [
            ("model", self.grid.model.is_empty()),
            ("optimizer", self.grid.optimizer.is_empty()),
            ("lr", self.grid.lr.is_empty()),
            ("device", self.grid.device.is_empty()),
            ("workers", self.grid.workers.is_empty()),
            ("batch_size", self.grid.batch_size.is_empty()),
            ("normalize", self.grid.normalize.is_empty()),
        ] {
            if empty {
                return Err(Error::config(format!("grid.{key} is empty")));
            }
        }
        Ok(())
    }

    /// The Cartesian product of the grid: model and optimizer, then the seed's RunBuilder order
    /// (lr, batch_size, workers, device, normalize; the last varies fastest), numbered from 1;
    /// `repeat` times over, the whole grid each time.
    pub fn runs(&self) -> Vec<RunParams> {
        let mut runs = Vec::new();
        for repeat in 1..=self.repeat {
            self.grid_points(repeat, &mut runs);
        }
        runs
    }

    fn grid_points(&self, repeat: u32, runs: &mut Vec<RunParams>) {
        let g = &self.grid;
        for model in &g.model {
            for &optimizer in &g.optimizer {
                for &lr in &g.lr {
                    for &batch_size in &g.batch_size {
                        for &workers in &g.workers {
                            for device in &g.device {
                                for &normalize in &g.normalize {
                                    runs.push(RunParams {
                                        run: runs.len() as u32 + 1,
                                        model: model_name(model),
                                        optimizer,
                                        lr,
                                        batch_size,
                                        workers,
                                        device: device.clone(),
                                        normalize,
                                        seed: self.seed,
                                        processes: 1,
                                        repeat,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Whether a run made under `other` is the same run as under `self`: the effective
    /// configs agree on every key but those in [`SweepConfig::NOT_IN_RESULTS`] (the grid
    /// point itself is compared separately). A key added later counts, unless it is listed.
    pub fn same_runs_as(&self, other: &SweepConfig) -> bool {
        self.run_identity() == other.run_identity()
    }

    /// Keys that never change a run's numbers: where results go and what the sweep is called,
    /// how far the loader reads ahead and in how much memory, and the grid, whose point each
    /// run records itself.
    /// `repeat` too: each run records which repetition it is.
    /// `checkpoint_every` too: a resumed run ends as one never stopped.
    pub const NOT_IN_RESULTS: [&'static str; 7] = [
        "name",
        "out",
        "prefetch",
        "prefetch_memory_mib",
        "repeat",
        "grid",
        "checkpoint_every",
    ];

    /// The effective config as JSON, less the keys that do not change a run's numbers.
    /// Transform lists in their one written form (`hflip` and `hflip:0.5` are one list), so
    /// that two spellings of the same settings are the same run.
    fn run_identity(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("the config serializes");
        if let Some(map) = v.as_object_mut() {
            for key in Self::NOT_IN_RESULTS {
                map.remove(key);
            }
            for (key, list) in [
                ("train_transforms", &self.train_transforms),
                ("test_transforms", &self.test_transforms),
            ] {
                if let Ok(t) = Transforms::new(list, self.seed) {
                    map.insert(key.into(), t.canonical().into());
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let e = toml::from_str::<SweepConfig>("epochz = 3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("epochz"), "{e}");
        let e = toml::from_str::<SweepConfig>("[grid]\nworker = [1]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("worker"), "{e}");
    }

    #[test]
    fn a_file_is_a_diff_from_the_defaults() {
        let p: SweepConfig = toml::from_str("epochs = 3\n[grid]\nworkers = [0, 2]").unwrap();
        assert_eq!(p.epochs, 3);
        assert_eq!(p.grid.workers, vec![Workers::Fixed(0), Workers::Fixed(2)]);
        assert_eq!(p.grid.batch_size, vec![1000]);
        assert!(p.shuffle);
    }

    #[test]
    fn grid_is_the_cartesian_product() {
        let mut p = SweepConfig::default();
        p.grid.workers = vec![Workers::Fixed(0), Workers::Fixed(1)];
        p.grid.normalize = vec![false, true];
        let runs = p.runs();
        assert_eq!(runs.len(), 4);
        assert_eq!(
            (runs[1].workers, runs[1].normalize),
            (Workers::Fixed(0), true)
        );
        assert_eq!(runs[3].run, 4);
    }

    #[test]
    fn torch_threads_must_be_positive_and_a_different_count_is_another_run() {
        let p: SweepConfig = toml::from_str("data = \"d\"\ntorch_threads = 0").unwrap();
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("torch_threads must be at least 1"), "{e}");
        let one: SweepConfig = toml::from_str("data = \"d\"\ntorch_threads = 1").unwrap();
        one.validate().unwrap();
        // Intra-op threads split reductions differently, so resume must not mix them.
        assert!(!one.same_runs_as(&SweepConfig {
            torch_threads: None,
            ..one.clone()
        }));
    }

    /// Every key of the config, with a value other than the default's.
    fn changed(key: &str) -> SweepConfig {
        let mut p = SweepConfig {
            data: "d".into(),
            ..SweepConfig::default()
        };
        match key {
            "name" => p.name = "other".into(),
            "data" => p.data = "elsewhere".into(),
            "test_data" => p.test_data = Some("t".into()),
            "resize" => p.resize = Some("24x24".into()),
            "train_transforms" => p.train_transforms = vec!["hflip".into()],
            "test_transforms" => p.test_transforms = vec!["center_crop:20".into()],
            "image_column" => p.image_column = Some("img".into()),
            "label_column" => p.label_column = Some("y".into()),
            "classes" => p.classes = Some(5),
            "on_bad_record" => p.on_bad_record = OnBadRecord::Skip,
            "epochs" => p.epochs = 2,
            "seed" => p.seed = 1,
            "shuffle" => p.shuffle = false,
            "drop_last" => p.drop_last = true,
            "prefetch" => p.prefetch = 8,
            "prefetch_memory_mib" => p.prefetch_memory_mib = Some(64),
            "repeat" => p.repeat = 3,
            "stats" => p.stats = Some("s.json".into()),
            "torch_threads" => p.torch_threads = Some(1),
            "sink" => p.sink = SinkKind::Null,
            "momentum" => p.momentum = 0.9,
            "weight_decay" => p.weight_decay = 0.01,
            "out" => p.out = Some("elsewhere".into()),
            "checkpoint_every" => p.checkpoint_every = "90s".into(),
            "grid" => {
                p.grid.workers = vec![Workers::Fixed(0), Workers::Fixed(1), Workers::Fixed(2)]
            }
            other => panic!("the test does not know the key '{other}': add it here"),
        }
        p
    }

    #[test]
    fn two_spellings_of_the_same_settings_are_the_same_run() {
        let with = |transforms: &[&str], model: &str| {
            let mut p = SweepConfig {
                data: "d".into(),
                train_transforms: transforms.iter().map(|t| t.to_string()).collect(),
                ..SweepConfig::default()
            };
            p.grid.model = vec![model.into()];
            p
        };
        let a = with(&["hflip", "random_crop:28,padding=4"], "./models/m.pt");
        let b = with(
            &["hflip:0.5", "random_crop:28x28,padding=4,mode=constant"],
            "models//m.pt",
        );
        assert!(a.same_runs_as(&b));
        assert_eq!(a.runs(), b.runs());
        assert_eq!(a.runs()[0].model, "models/m.pt");
        assert!(!a.same_runs_as(&with(&["hflip:0.4"], "models/m.pt")));
    }

    #[test]
    fn checkpoint_every_reads_units_and_refuses_what_is_not_a_duration() {
        let secs = |t: &str| checkpoint_interval(t).unwrap().map(|d| d.as_secs_f64());
        assert_eq!(secs("90s"), Some(90.0));
        assert_eq!(secs("10m"), Some(600.0));
        assert_eq!(secs("1.5h"), Some(5400.0));
        assert_eq!(secs("0.25"), Some(0.25));
        assert_eq!(secs("0"), None);
        assert_eq!(secs("0m"), None);
        for bad in ["", "ten", "-5s", "5d", "inf", "nan", "1e300"] {
            let e = checkpoint_interval(bad).unwrap_err().to_string();
            assert!(
                e.contains("checkpoint_every") && e.contains("not a duration"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn resume_compares_every_key_that_changes_the_numbers() {
        let base = changed("name");
        let base = SweepConfig {
            name: SweepConfig::default().name,
            ..base
        };
        let keys = serde_json::to_value(&base).unwrap();
        let keys: Vec<&String> = keys.as_object().unwrap().keys().collect();
        assert!(keys.len() >= 18, "{keys:?}");
        for key in keys {
            let other = changed(key);
            assert_ne!(
                serde_json::to_value(&other).unwrap()[key.as_str()],
                serde_json::to_value(&base).unwrap()[key.as_str()],
                "{key}: the test must change it"
            );
            let same = base.same_runs_as(&other);
            if SweepConfig::NOT_IN_RESULTS.contains(&key.as_str()) {
                assert!(same, "{key} does not change a run's numbers");
            } else {
                assert!(!same, "{key} changes a run's numbers: --resume must rerun");
            }
        }
    }
}
