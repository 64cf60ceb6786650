//! Accept survives running out of file descriptors: `EMFILE` comes back as an error, and the
//! listener accepts again once descriptors are free. Run in a child process with a low
//! `RLIMIT_NOFILE`, so the rest of the test binary keeps its descriptors.

use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use spindle_loop::EventLoop;
use spindle_net::TcpListener;

const CHILD: &str = "SPINDLE_EMFILE_CHILD";
const EMFILE: i32 = 24;

#[test]
fn accept_survives_emfile() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "accept_survives_emfile",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .spawn()
        .unwrap();
    // Bounded: the child either finishes or is killed.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the EMFILE child hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the EMFILE child failed: {status}");
}

fn child() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let hard = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(64),
            maximum: hard,
        },
    )
    .unwrap();
    let lp = EventLoop::new().unwrap();
    lp.run_until_complete(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Fill the descriptor table.
        let mut hoard: Vec<OwnedFd> = Vec::new();
        loop {
            match listener.as_fd().try_clone_to_owned() {
                Ok(fd) => hoard.push(fd),
                Err(e) if e.raw_os_error() == Some(EMFILE) => break,
                Err(e) => panic!("unexpected: {e}"),
            }
        }
        // One slot for the client's socket; the server side then has none.
        hoard.pop();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let err = listener.accept().await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(EMFILE), "{err}");
        assert_ne!(err.kind(), ErrorKind::WouldBlock);
        // Descriptors free again: the same listener accepts the waiting connection.
        hoard.truncate(hoard.len().saturating_sub(4));
        let (conn, _) = spindle_loop::timeout(Duration::from_secs(10), listener.accept())
            .await
            .expect("accept hung after EMFILE")
            .unwrap();
        assert!(conn.peer_addr().is_ok());
    })
    .unwrap();
}
