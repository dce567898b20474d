"""The host the SDK talks to: the component's imports, installed by the
entry `vestibule-plugin build` generates, or a fake installed by
`testing`. One place, so that nothing else knows which it is."""

from typing import Callable, List, Optional, Tuple


class Host:
    """What the SDK needs of a host, in plain Python values."""

    def __init__(
        self,
        config: Callable[[], str],
        log: Callable[[str, str, List[Tuple[str, str]]], None],
        send: Optional[Callable[[str, str, List[Tuple[str, str]], int], None]] = None,
    ):
        self.config = config
        self.log = log
        self.send = send


_host: Optional[Host] = None


def install(host: Host) -> None:
    global _host
    _host = host


def current() -> Host:
    if _host is None:
        raise RuntimeError("no host: run the plugin in Vestibule, or under vestibule_plugin.testing.FakeHost")
    return _host


def sender() -> Callable[[str, str, List[Tuple[str, str]], int], None]:
    send = current().send
    if send is None:
        raise RuntimeError("only an action plugin may send commands")
    return send
