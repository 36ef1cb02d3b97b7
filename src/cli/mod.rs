//! The `flowload` command line (the binary's, not the library's): `stats`, `run`, `report`,
//! `convert` and `cluster-local`, clap derive, every flag documented.

pub(crate) mod cluster_local;
pub(crate) mod commands;
pub(crate) mod console;

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use flowload::config::{OptimizerKind, SinkKind, SweepConfig};
use flowload::{Error, Result};
use flowload_core::cluster::{ClusterSpec, read_hostfile};
use flowload_core::{
    CacheSetting, Dataset, OnBadRecord, WireFormat, Workers, formats_help, transforms_help,
};

/// `--on-bad-record`'s values, read from the policy's own list of names.
fn on_bad_record() -> impl TypedValueParser<Value = OnBadRecord> {
    PossibleValuesParser::new(OnBadRecord::NAMES).map(|s| s.parse().expect("a listed name"))
}

/// `--wire`'s values, read from the format's own list of names.
fn wire_format() -> impl TypedValueParser<Value = WireFormat> {
    PossibleValuesParser::new(WireFormat::NAMES).map(|s| s.parse().expect("a listed name"))
}

/// A source argument's help: every format of the table in `flowload_core::FORMATS`.
fn source_help() -> String {
    format!("Any source: {}", formats_help())
}

/// `--augment`'s help: every transform of the table in `flowload_core::TRANSFORMS`.
fn augment_help() -> String {
    format!(
        "A transform of the training images, repeatable, in order (replaces the pipeline's train_transforms): {}",
        transforms_help(None)
    )
}

/// `--test-transforms`' help: the deterministic transforms of the same table.
fn test_transforms_help() -> String {
    format!(
        "A transform of the test images, repeatable (replaces test_transforms): {}",
        transforms_help(Some(false))
    )
}

#[derive(Debug, Parser)]
#[command(
    name = "flowload",
    version,
    about = "Training data as a streaming dataflow"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print per-channel mean and std (0..1 scale) of a source's training split.
    Stats(StatsArgs),
    /// Run every combination of a pipeline's grid and report each run.
    Run(Box<RunArgs>),
    /// Turn a results directory (one sweep or several) into charts and report.html.
    Report(ReportArgs),
    /// Write any source as Parquet in the Hugging Face layout (PNG bytes).
    Convert(ConvertArgs),
    /// Run a `run` command as N cluster processes on this machine (127.0.0.1, free ports).
    ClusterLocal(ClusterLocalArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ClusterLocalArgs {
    /// Processes to start; process 0 trains, every process decodes.
    #[arg(long, default_value_t = 2)]
    pub processes: usize,
    /// The command: `run PIPELINE [FLAGS]` (without --processes, --process-id, --hostfile).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// Options of the encoded sources (Parquet shards, image folders), shared by the commands.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SourceArgs {
    /// Decode every image to HxW (for example 28x28) instead of requiring one size.
    #[arg(long, value_name = "HxW")]
    pub resize: Option<String>,
    #[arg(long = "augment", value_name = "T", help = augment_help())]
    pub train_transforms: Vec<String>,
    #[arg(long = "test-transforms", value_name = "T", help = test_transforms_help())]
    pub test_transforms: Vec<String>,
    /// Parquet column with the image bytes (binary, or a struct with a `bytes` field).
    #[arg(long, value_name = "NAME")]
    pub image_column: Option<String>,
    /// Parquet column with the integer label.
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
    /// Number of classes; labels outside 0..K are bad records.
    #[arg(long, value_name = "K")]
    pub classes: Option<usize>,
    /// What to do with a record that cannot be decoded: fail (default) or skip (count and list it).
    #[arg(long, value_name = "POLICY", value_parser = on_bad_record())]
    pub on_bad_record: Option<OnBadRecord>,
}

impl SourceArgs {
    /// Opens `spec` with these options (for the commands without a pipeline: `stats`,
    /// `convert`), and returns the bad-record policy to use on it.
    pub fn open(&self, spec: &str) -> Result<(Dataset, OnBadRecord)> {
        let mut p = SweepConfig::default();
        self.apply(&mut p);
        let data = Dataset::open(spec, &p.dataset_options()?)?;
        Ok((data, p.on_bad_record))
    }

    /// Applies the flags given on top of `p`.
    pub fn apply(&self, p: &mut SweepConfig) {
        if self.resize.is_some() {
            p.resize = self.resize.clone();
        }
        if !self.train_transforms.is_empty() {
            p.train_transforms = self.train_transforms.clone();
        }
        if !self.test_transforms.is_empty() {
            p.test_transforms = self.test_transforms.clone();
        }
        if self.image_column.is_some() {
            p.image_column = self.image_column.clone();
        }
        if self.label_column.is_some() {
            p.label_column = self.label_column.clone();
        }
        if self.classes.is_some() {
            p.classes = self.classes;
        }
        if let Some(b) = self.on_bad_record {
            p.on_bad_record = b;
        }
    }
}

/// Where the statistics cache is, for the commands that take statistics.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct CacheArgs {
    /// The statistics cache: each shard's channel sums, keyed by its content, so that only new
    /// or changed shards are decoded [default: $FLOWLOAD_STATS_CACHE, else
    /// ~/.cache/flowload/stats].
    #[arg(long, value_name = "DIR", conflicts_with = "no_stats_cache")]
    pub stats_cache: Option<PathBuf>,
    /// Neither read nor write the statistics cache: decode every shard, every time.
    #[arg(long)]
    pub no_stats_cache: bool,
}

impl CacheArgs {
    pub fn setting(&self) -> CacheSetting {
        CacheSetting::from_flags(self.stats_cache.clone(), self.no_stats_cache)
    }
}

#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    #[arg(help = source_help())]
    pub source: String,
    /// Output format; `parquet` is the one there is.
    #[arg(long, value_enum, default_value = "parquet")]
    pub to: ConvertFormat,
    /// Output directory: `train-00000-of-0000N.parquet`, `test-...`.
    pub out: PathBuf,
    /// Rows per row group (the unit a streaming reader holds in memory).
    #[arg(long, default_value_t = 1000)]
    pub row_group_size: usize,
    /// Rows per shard file (0: one shard per split).
    #[arg(long, default_value_t = 0)]
    pub shard_rows: usize,
    /// Replace the shards of an earlier conversion in OUT (anything else there is an error).
    /// Without it, OUT must be empty or new.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub source_args: SourceArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ConvertFormat {
    Parquet,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// A results directory: `results/<pipeline>` or a folder holding several of them.
    pub dir: PathBuf,
    /// Where the charts and report.html go (default `DIR/report`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    #[arg(help = source_help())]
    pub source: String,
    /// Timely worker threads for the statistics pass (0 = the main thread; auto = every core).
    #[arg(long, default_value_t = Workers::Fixed(1))]
    pub workers: Workers,
    /// Print exactly one JSON object, the format `--stats FILE` reads.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub source_args: SourceArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Pipeline file (`pipelines/*.toml`); flags below override its values.
    pub pipeline: Option<PathBuf>,
    #[arg(long, help = source_help())]
    pub data: Option<String>,
    /// Test split from another source (default: the data's own test split).
    #[arg(long, value_name = "SOURCE")]
    pub test_data: Option<String>,
    #[command(flatten)]
    pub source_args: SourceArgs,
    /// Decode workers, comma-separated; each value is a run. 0 builds batches on the consumer's
    /// thread; `auto` starts with one and adds or removes workers while the run goes.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        allow_negative_numbers = true
    )]
    pub workers: Option<Vec<Workers>>,
    /// Batch sizes, comma-separated; each value is a run.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        value_parser = parse_batch_size,
        allow_negative_numbers = true
    )]
    pub batch_size: Option<Vec<usize>>,
    /// Models, comma-separated: `seed` (the seed's network) or TorchScript files taking
    /// [B,C,H,W] float32 and returning [B,classes] logits; each value is a run.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub model: Option<Vec<String>>,
    /// Optimizers, comma-separated: adam, adamw, sgd; each value is a run.
    #[arg(long, value_delimiter = ',', value_enum, value_name = "LIST")]
    pub optimizer: Option<Vec<OptimizerKind>>,
    /// SGD's momentum (default 0).
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Weight decay of the optimizer (default 0; AdamW's is decoupled).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Learning rates, comma-separated; each value is a run.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        allow_negative_numbers = true
    )]
    pub lr: Option<Vec<f64>>,
    /// Devices, comma-separated: auto (CUDA when present), cpu, cuda, cuda:N; each value is a run.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub device: Option<Vec<String>>,
    /// Normalization on or off, comma-separated (`false,true`); each value is a run.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub normalize: Option<Vec<bool>>,
    /// Epochs per run.
    #[arg(long)]
    pub epochs: Option<u32>,
    /// Seed of the per-epoch shuffle.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Read records in file order instead of shuffling.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Drop the last partial batch of each epoch.
    #[arg(long)]
    pub drop_last: bool,
    /// Batches queued ahead per worker (PyTorch's prefetch_factor).
    #[arg(long)]
    pub prefetch: Option<usize>,
    /// Memory `--workers auto` may fill with batches in flight, MiB (default: a quarter of
    /// memory).
    #[arg(long, value_name = "MIB")]
    pub prefetch_memory_mib: Option<u64>,
    /// Runs of every grid point, interleaved, so that the report can tell effects from noise.
    #[arg(long, value_name = "N")]
    pub repeat: Option<u32>,
    /// Threads libtorch uses inside each training step (default: one per core).
    #[arg(long, value_name = "N")]
    pub torch_threads: Option<usize>,
    /// Precomputed statistics, as written by `flowload stats --json` (no statistics pass, no
    /// cache).
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Where batches go.
    #[arg(long, value_enum)]
    pub sink: Option<SinkKind>,
    /// Output directory (default `results/<pipeline name>`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Complete the sweep in the output directory: skip its runs that are complete and were
    /// made with this config (after a crash, a kill, or a grid that grew).
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Replace the results in the output directory: flowload's own files there are removed
    /// first (anything else there is an error). Without --resume or --overwrite, a directory
    /// that holds results is refused.
    #[arg(long)]
    pub overwrite: bool,
    /// Write charts and report.html into `<out>/report` at the end of the sweep.
    #[arg(long)]
    pub report: bool,
    /// How often a training run checkpoints its model, optimizer and position (and at each
    /// epoch's end): `90s`, `10m`, `1h`, or seconds; `0` for none. `--resume` goes on from the
    /// checkpoint. Default: the pipeline's, else 10m.
    #[arg(long, value_name = "DURATION")]
    pub checkpoint_every: Option<String>,
    /// Keep a completed run's checkpoint (by default it is removed when its run file is written).
    #[arg(long)]
    pub keep_checkpoints: bool,
    /// Processes in the cluster (1: no cluster). Each runs `--workers` decode threads.
    #[arg(long, default_value_t = 1, help_heading = "Cluster")]
    pub processes: usize,
    /// This process's index, 0..N; process 0 trains and writes the results.
    #[arg(long, default_value_t = 0, help_heading = "Cluster")]
    pub process_id: usize,
    /// One `host:port` per line, process 0 first (timely's format); needed with --processes > 1.
    #[arg(long, value_name = "FILE", help_heading = "Cluster")]
    pub hostfile: Option<PathBuf>,
    /// Seconds to wait for the other processes to connect before giving up with an error.
    #[arg(
        long,
        default_value_t = 10.0,
        value_name = "SECS",
        help_heading = "Cluster",
        allow_negative_numbers = true
    )]
    pub connect_timeout: f64,
    /// Seconds process 0 waits for a batch before it stops and names the process that owes it
    /// (one that hangs without dying: stopped, frozen host).
    #[arg(
        long,
        default_value_t = 60.0,
        value_name = "SECS",
        help_heading = "Cluster",
        allow_negative_numbers = true
    )]
    pub stall_timeout: f64,
    /// How batches travel to process 0: raw u8 pixels (normalized there) or Arrow IPC f32.
    #[arg(long, default_value = "raw", value_parser = wire_format(), help_heading = "Cluster")]
    pub wire: WireFormat,
}

fn parse_batch_size(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) | Err(_) => Err(format!(
            "Invalid batch size '{s}': expected a whole number ≥ 1"
        )),
        Ok(n) => Ok(n),
    }
}

impl RunArgs {
    /// This process's place in the cluster; `None` with `--processes 1`.
    pub fn cluster(&self) -> Result<Option<ClusterSpec>> {
        if self.processes <= 1 {
            if self.process_id != 0 {
                return Err(Error::config(format!(
                    "--process-id {} needs --processes 2 or more",
                    self.process_id
                )));
            }
            return Ok(None);
        }
        let Some(hostfile) = &self.hostfile else {
            return Err(Error::config(
                "--processes > 1 needs --hostfile FILE (one host:port per line, process 0 first)",
            ));
        };
        for (flag, secs) in [
            ("--connect-timeout", self.connect_timeout),
            ("--stall-timeout", self.stall_timeout),
        ] {
            if !(secs.is_finite() && secs > 0.0) {
                return Err(Error::config(format!(
                    "{flag} must be a positive number of seconds"
                )));
            }
        }
        let addresses = read_hostfile(hostfile, self.processes)?;
        let spec = ClusterSpec::new(
            self.processes,
            self.process_id,
            addresses,
            Duration::from_secs_f64(self.connect_timeout),
        )?;
        Ok(Some(spec.with_stall_timeout(Duration::from_secs_f64(
            self.stall_timeout,
        ))))
    }

    /// The effective pipeline: the file (or the defaults), then every flag given on top.
    pub fn pipeline(&self) -> Result<SweepConfig> {
        let mut p = match &self.pipeline {
            Some(path) => SweepConfig::load(path)?,
            None => SweepConfig::default(),
        };
        macro_rules! set {
            ($field:expr, $flag:expr) => {
                if let Some(v) = $flag.clone() {
                    $field = v;
                }
            };
        }
        set!(p.data, self.data);
        if self.test_data.is_some() {
            p.test_data = self.test_data.clone();
        }
        self.source_args.apply(&mut p);
        set!(p.grid.workers, self.workers);
        set!(p.grid.batch_size, self.batch_size);
        set!(p.grid.normalize, self.normalize);
        set!(p.grid.lr, self.lr);
        set!(p.grid.model, self.model);
        set!(p.grid.optimizer, self.optimizer);
        set!(p.momentum, self.momentum);
        set!(p.weight_decay, self.weight_decay);
        set!(p.grid.device, self.device);
        set!(p.epochs, self.epochs);
        set!(p.seed, self.seed);
        set!(p.prefetch, self.prefetch);
        set!(p.repeat, self.repeat);
        if self.prefetch_memory_mib.is_some() {
            p.prefetch_memory_mib = self.prefetch_memory_mib;
        }
        set!(p.sink, self.sink);
        if self.torch_threads.is_some() {
            p.torch_threads = self.torch_threads;
        }
        if self.stats.is_some() {
            p.stats = self.stats.clone();
        }
        if self.out.is_some() {
            p.out = self.out.clone();
        }
        if let Some(every) = &self.checkpoint_every {
            p.checkpoint_every = every.clone();
        }
        p.shuffle &= !self.no_shuffle;
        p.drop_last |= self.drop_last;
        Ok(p)
    }
}
