"""Serve the FiftyOne App for a pushed dataset, and stop what was started.

``labelfix fiftyone launch`` binds the App to 127.0.0.1 unless told otherwise (the App has no sign-in;
share it over an ssh tunnel). On Ctrl+C, SIGTERM or SIGHUP the App server this process started is
stopped with every process under it (issue 14: a SIGTERM used to leave it running).
"""

from __future__ import annotations

from labelfix.review.fiftyone_sync import FiftyOneError, _fiftyone

__all__ = ["launch", "stop_app_server"]


def launch(dataset_name: str, *, port: int = 5151, address: str = "127.0.0.1", wait: bool = True):
    """Serve the FiftyOne App for ``dataset_name`` on ``address:port`` (remote mode, no browser opened).

    With ``wait`` this blocks until interrupted (Ctrl+C, or SIGTERM/SIGHUP, which are turned into an
    interrupt here), then stops the App server it started before returning.
    """
    fo = _fiftyone()
    if not fo.dataset_exists(dataset_name):
        raise FiftyOneError(f"no FiftyOne dataset {dataset_name!r}", fix="run `labelfix fiftyone push` first")
    session = fo.launch_app(fo.load_dataset(dataset_name), remote=True, port=port, address=address)
    if not wait:
        return session
    try:
        session.wait(-1)
    except KeyboardInterrupt:
        pass
    finally:
        stop_app_server(port)
    return session


def stop_app_server(port: int) -> None:
    """Stop the FiftyOne App server this process started on ``port``, with every process under it.

    FiftyOne runs the server under a watcher process (``fiftyone/service/main.py``) that stops it when its
    parent exits normally; a parent stopped by a signal can leave it running (issue 14), so the tree is
    ended here explicitly. The database service (shared with other FiftyOne clients) is left alone.
    """
    import psutil
    from fiftyone.core.session import session as fos_session

    service = fos_session._server_services.pop(port, None)
    child = getattr(service, "child", None)
    if child is None:
        return
    try:
        processes = [child, *child.children(recursive=True)]
    except psutil.Error:
        processes = [child]
    for process in reversed(processes):
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(processes, timeout=10)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
