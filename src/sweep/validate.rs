//! What a sweep checks before anything is written: the test split fits the training split,
//! every run has batches that fit in memory, and every model fits the data. A bad setting is a
//! message naming it, not an empty run, an out-of-memory abort or a half-written directory.

use flowload_core::{Dataset, MAX_DECODE_BYTES, Records, Workers, physical_memory};

use super::loader_settings;
use crate::config::{RunParams, SEED_MODEL, SinkKind, SweepConfig};
use crate::error::{Error, Result};

/// The test split must fit the network the training split builds: the same image shape, and
/// no class the training data does not have.
pub(crate) fn check_test_split(train: &Records, test: &Records) -> Result<()> {
    if test.shape() != train.shape() {
        return Err(Error::config(format!(
            "test data {} is {}, the training data {} is {} (use --resize, or test_transforms that end in the training size)",
            test.origin(),
            test.shape(),
            train.origin(),
            train.shape()
        )));
    }
    if test.classes() > train.classes() {
        return Err(Error::config(format!(
            "test data {} has {} classes, the training data {} has {}: the network cannot predict the others (give --classes to both)",
            test.origin(),
            test.classes(),
            train.origin(),
            train.classes()
        )));
    }
    Ok(())
}

/// Every run has batches, and its batches fit in `memory` bytes (the machine's, where the
/// system says): u8 and f32 copies of every batch in flight, the queues and one being built per
/// worker, and the training sink's whole test split, normalized, for its evaluations.
pub(crate) fn check_sizes(
    pipeline: &SweepConfig,
    data: &Dataset,
    runs: &[RunParams],
    memory: Option<u64>,
) -> Result<()> {
    let (train, shape) = (&data.train, data.train.shape());
    if !shape.fits_a_record() {
        return Err(Error::config(format!(
            "images of {shape} are {} MiB each, more than the {} MiB a record may take{}",
            shape.len() >> 20,
            MAX_DECODE_BYTES >> 20,
            if pipeline.resize.is_some() || !pipeline.train_transforms.is_empty() {
                " (--resize, train_transforms)"
            } else {
                ""
            }
        )));
    }
    for p in runs {
        let loader = loader_settings(pipeline, p, train, true);
        if loader.batches_per_epoch() == 0 {
            return Err(Error::config(format!(
                "batch size {} with --drop-last leaves no batch: {} has {} training images",
                p.batch_size,
                train.origin(),
                train.len()
            )));
        }
        // `auto` starts at one worker and adds none beyond its memory budget.
        let workers = match p.workers {
            Workers::Fixed(n) => n.max(1),
            Workers::Auto => 1,
        };
        let in_flight = (pipeline.prefetch.max(1) + 1) * workers + 1;
        let test = match (&data.test, pipeline.sink) {
            (Some(t), SinkKind::Train) => t.len() as u64 * shape.len() as u64 * 4,
            _ => 0,
        };
        let bytes = loader
            .batch_bytes()
            .saturating_mul(in_flight as u64)
            .saturating_add(test);
        if memory.is_some_and(|m| bytes > m) {
            return Err(Error::config(format!(
                "batch size {} of {shape} images with {} worker(s) and prefetch {}{} holds about {} GiB in memory; this machine has {} GiB",
                p.batch_size,
                p.workers,
                pipeline.prefetch,
                if test > 0 { ", and the test split" } else { "" },
                bytes >> 30,
                memory.unwrap_or(0) >> 30
            )));
        }
    }
    Ok(())
}

/// [`check_sizes`] against this machine's memory.
pub(crate) fn check_sizes_here(
    pipeline: &SweepConfig,
    data: &Dataset,
    runs: &[RunParams],
) -> Result<()> {
    check_sizes(pipeline, data, runs, physical_memory())
}

/// Each TorchScript model of the grid fits the data (see [`crate::model::check_contract`]).
/// Only the training sink loads models.
pub(crate) fn check_models(pipeline: &SweepConfig, data: &Dataset) -> Result<()> {
    if pipeline.sink != SinkKind::Train {
        return Ok(());
    }
    let mut checked: Vec<&String> = Vec::new();
    for spec in &pipeline.grid.model {
        if spec == SEED_MODEL || checked.contains(&spec) {
            continue;
        }
        crate::model::check_contract(spec, data.train.shape(), data.train.classes())?;
        checked.push(spec);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowload_core::DatasetOptions;

    fn data(spec: &str) -> Dataset {
        Dataset::open(spec, &DatasetOptions::default()).unwrap()
    }

    fn pipeline(data: &str) -> SweepConfig {
        SweepConfig {
            data: data.into(),
            ..SweepConfig::default()
        }
    }

    #[test]
    fn a_test_split_of_another_shape_or_with_more_classes_is_named() {
        let train = data("synthetic:images=20,size=8x8,classes=3");
        let other_shape = data("synthetic:images=20,size=9x8,classes=3");
        let more_classes = data("synthetic:images=20,size=8x8,classes=5");
        check_test_split(&train.train, train.test.as_ref().unwrap()).unwrap();
        let e = check_test_split(&train.train, &other_shape.train)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1x9x8") && e.contains("1x8x8"), "{e}");
        let e = check_test_split(&train.train, &more_classes.train)
            .unwrap_err()
            .to_string();
        assert!(e.contains("has 5 classes") && e.contains("has 3"), "{e}");
    }

    #[test]
    fn a_run_without_batches_or_beyond_memory_is_named_before_it_starts() {
        let spec = "synthetic:images=50,size=8x8";
        let d = data(spec);
        let mut p = pipeline(spec);
        p.grid.batch_size = vec![64];
        p.drop_last = true;
        let e = check_sizes(&p, &d, &p.runs(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("batch size 64 with --drop-last leaves no batch") && e.contains("50"),
            "{e}"
        );
        p.drop_last = false;
        check_sizes(&p, &d, &p.runs(), Some(1 << 30)).unwrap();
        // A batch of 50 images of 64 values as u8 and f32 is 16 KB; one worker has 3 in flight,
        // plus one with the trainer: 64 KB, and the test split's 10 images as f32.
        check_sizes(&p, &d, &p.runs(), Some(70_000)).unwrap();
        let e = check_sizes(&p, &d, &p.runs(), Some(60_000))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "batch size 64 of 1x8x8 images with 1 worker(s) and prefetch 2, and the test split"
            ),
            "{e}"
        );
        // Two workers hold 7 batches; `auto` starts at one.
        p.grid.workers = vec![Workers::Fixed(2)];
        assert!(check_sizes(&p, &d, &p.runs(), Some(70_000)).is_err());
        p.grid.workers = vec![Workers::Auto];
        check_sizes(&p, &d, &p.runs(), Some(70_000)).unwrap();
    }

    #[test]
    fn a_model_that_is_not_there_is_named_and_the_null_sink_loads_none() {
        let spec = "synthetic:images=20,size=8x8";
        let d = data(spec);
        let mut p = pipeline(spec);
        p.grid.model = vec!["seed".into(), "/nonexistent/m.pt".into()];
        let e = check_models(&p, &d).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/m.pt"), "{e}");
        p.sink = SinkKind::Null;
        check_models(&p, &d).unwrap();
    }
}
