//! Issue 13.14: the same situation reported by different crates is matched one way, through
//! `spindle::Error`.

use spindle::{
    get_running_loop, to_thread, Error, EventLoop, EventLoopExt, LoopError, Runtime, TaskError,
};

#[test]
fn a_closed_loop_is_error_closed_whichever_crate_reports_it() {
    let lp = EventLoop::new().unwrap();
    let handle = lp.handle();
    lp.close().unwrap();
    let errors: [Error; 4] = [
        lp.run_forever().unwrap_err().into(),
        lp.call_soon(|| ()).unwrap_err().into(),
        handle.call_soon_threadsafe(|| ()).unwrap_err().into(),
        handle.stop().unwrap_err().into(),
    ];
    for e in errors {
        assert_eq!(e, Error::Closed);
    }
}

#[test]
fn no_running_loop_is_error_no_running_loop_whichever_crate_reports_it() {
    let errors: [Error; 3] = [
        get_running_loop().unwrap_err().into(),
        to_thread(|| ()).unwrap_err().into(),
        LoopError::NoRunningLoop.into(),
    ];
    for e in errors {
        assert_eq!(e, Error::NoRunningLoop);
    }
}

#[test]
fn question_mark_mixes_the_crates_errors_into_one_result() {
    fn cancelled_task_on_a_runtime() -> Result<u8, Error> {
        let rt = Runtime::builder().worker_threads(1).build()?;
        let task = rt.spawn(std::future::pending::<u8>())?;
        task.cancel();
        let out = rt.block_on(task)??;
        rt.shutdown();
        Ok(out)
    }
    assert_eq!(cancelled_task_on_a_runtime(), Err(Error::Cancelled));
    // What has no shared meaning keeps its crate's error.
    let stopped: Error = LoopError::StoppedBeforeComplete.into();
    assert_eq!(stopped, Error::Loop(LoopError::StoppedBeforeComplete));
    let wrapped: Error = LoopError::Task(TaskError::Timeout).into();
    assert_eq!(wrapped, Error::Timeout);
}
