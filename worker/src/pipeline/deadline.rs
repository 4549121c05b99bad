//! A task's time limit (`THUMBQ_TASK_TIME_LIMIT_SECS`). The pipeline runs on a blocking thread, which nothing can
//! stop from outside, so it looks at the clock between its steps and gives up there: a task ends at most one step
//! (a decode, a resample, an encode) past its limit, instead of holding a core for as long as its renditions take.

use std::time::{Duration, Instant};

use super::PipelineError;

/// When the pipeline must give up, and the limit it was given (for the error's message).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    /// `limit` from now.
    pub fn after(limit: Duration) -> Self {
        Self { at: Instant::now() + limit, limit }
    }

    /// A [`PipelineError::TimeLimit`] once the deadline has passed, saying how far the task got (`made` of `of`
    /// thumbnails).
    pub fn check(&self, made: usize, of: usize) -> Result<(), PipelineError> {
        if Instant::now() < self.at {
            return Ok(());
        }
        Err(PipelineError::TimeLimit { limit: self.limit, made, of })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Limits, make_thumbnails};

    #[test]
    fn a_deadline_passes_once_its_limit_has_elapsed_and_says_how_far_the_task_got() {
        assert!(Deadline::after(Duration::from_secs(3600)).check(0, 1).is_ok());
        let error = Deadline::after(Duration::ZERO).check(2, 8).unwrap_err();
        assert!(matches!(error, PipelineError::TimeLimit { made: 2, of: 8, .. }), "{error}");
        assert!(error.to_string().contains("time limit of 0 s"), "{error}");
    }

    #[test]
    fn a_pipeline_past_its_deadline_gives_up_after_the_decode() {
        use thumbq_common::task::{Fit, OutputFormat, ResizeArgs};
        let source = include_bytes!("../../../assets/example.jpg");
        let outputs = [ResizeArgs::new(64, 64, Fit::Cover, OutputFormat::Jpeg); 3];
        let limits = Limits { deadline: Some(Deadline::after(Duration::ZERO)), ..Limits::pixels(1 << 30) };
        let error = make_thumbnails(source, &outputs, limits).unwrap_err();
        assert!(matches!(error, PipelineError::TimeLimit { made: 0, of: 3, .. }), "{error}");
        let limits = Limits { deadline: Some(Deadline::after(Duration::from_secs(3600))), ..limits };
        assert_eq!(make_thumbnails(source, &outputs, limits).unwrap().len(), 3);
    }
}
