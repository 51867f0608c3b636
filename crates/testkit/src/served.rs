//! A fake HTTP API (the fake Graph, the fake Gmail) served on a port of its own, by a
//! thread with its own runtime, so that it answers whatever runtime the test uses (or
//! none); stopped gracefully, and the thread joined, when dropped. A [`Gate`] holds
//! some of its requests unanswered, for a test that kills postdesk meanwhile.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

/// A running server; see the [module documentation](self).
pub(crate) struct Served {
    pub(crate) port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Served {
    /// Serves the router `app` makes for the port it is given, until dropped; `what`
    /// names the server in panics.
    pub(crate) fn start(
        what: &'static str,
        app: impl FnOnce(u16) -> axum::Router + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("bind {what}: {e}"));
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("runtime for {what}: {e}"));
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, app(port))
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{what} serves: {e}"));
            });
        });
        Self {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Requests held unanswered while `held`, and how many wait now.
#[derive(Default)]
pub(crate) struct Gate {
    pub(crate) held: bool,
    pub(crate) waiting: usize,
}

/// Waits while the gate that `gate` picks out of the state is held, counted as waiting.
/// A request whose client went away may be dropped while it waits (the server noticed
/// the closed connection) or carried out once released (it did not), as with a real
/// server; either way it stops counting as waiting.
pub(crate) async fn pass<S>(shared: &Mutex<S>, gate: impl Fn(&mut S) -> &mut Gate + Copy) {
    /// Counts one waiting request while it lives.
    struct Waiting<'a, S, G: Fn(&mut S) -> &mut Gate> {
        shared: &'a Mutex<S>,
        gate: G,
    }
    impl<S, G: Fn(&mut S) -> &mut Gate> Drop for Waiting<'_, S, G> {
        fn drop(&mut self) {
            let mut state = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            (self.gate)(&mut state).waiting -= 1;
        }
    }
    let mut waiting = None;
    loop {
        {
            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
            let g = gate(&mut state);
            if !g.held {
                drop(state);
                drop(waiting);
                return;
            }
            if waiting.is_none() {
                g.waiting += 1;
                waiting = Some(Waiting { shared, gate });
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
