"""A Windows Remote Shell's IdleTimeOut: what the Create response echoes and when the shell goes.

What Microsoft documents, and what the lab does with it:

- The server's setting is `WSMan:\\localhost\\Shell\\IdleTimeout` (`winrm/config/winrs`
  IdleTimeout), in milliseconds; 7,200,000 (2 hours) on current Windows, and the recorded Create
  responses without a requested value say `PT7200.000S`. The Group Policy "Specify idle Timeout"
  (WindowsRemoteShell.admx, Windows Components/Windows Remote Shell) says: "Any value from 0 to
  0x7FFFFFFF can be set. A minimum of 60000 milliseconds (1 minute) is used for smaller values",
  and that the server waits that long "since the last received message from the client before
  terminating the open shell". MS-WSMV 2.2.4.42 (WinrsType) lists the setting (milliseconds);
  MS-WSMV's plug-in quota IdleTimeoutms gives the same range (minimum 60000, maximum
  2147483647) and says the service closes a shell idle that long. `server_idle_ms` applies that
  range to the lab's setting.
- A client may ask for its own value in the Create body (`rsp:IdleTimeOut`, an xs:duration,
  MS-WSMV ShellType). Recorded from a real server: `PT60S` is echoed as `PT60.000S`
  (seconds, three decimals) and enforced. A value that is not an xs:duration (pywinrm's
  `open_shell(idle_timeout=3600000)`) is refused with fault 2150858817, s:Sender,
  w:SchemaValidationError (pywinrm issue 377 quotes the fault from a Windows Server).
- NOT documented for a requested value: what Windows does with one below the 60 s minimum (the
  minimum is documented for the server's setting only) or above the server's setting. The lab
  takes the cautious reading for a client, the one that deletes the shell sooner: a value below
  the minimum is honoured as asked, and a value above the server's setting is cut to the
  setting. The echo always says what the lab enforces. MaxShellRunTime (a shell's whole
  lifetime, busy or not, in the same WinrsType) is not modelled.

Time in the lab is scaled: the shell goes after (IdleTimeOut x time_scale) wall-clock seconds
with no request on it (Command, Send, Receive or Signal; a request still being answered, such
as a held Receive, counts as activity until it is answered).

>>> requested_idle_s("PT60S"), echo(60.0)
(60.0, 'PT60.000S')
"""

from __future__ import annotations

from harness.virtual_lab.winrm.wsman import parse_duration

#: WinRM's default Shell IdleTimeout (`WSMan:\localhost\Shell\IdleTimeout`), milliseconds
DEFAULT_IDLE_MS = 7_200_000
#: the documented range of the server's setting (Group Policy text; MS-WSMV IdleTimeoutms)
MIN_IDLE_MS, MAX_IDLE_MS = 60_000, 0x7FFFFFFF


class NotADuration(ValueError):
    """The requested rsp:IdleTimeOut is not an xs:duration (Windows: w:SchemaValidationError)."""


def server_idle_ms(configured_ms: int) -> int:
    """The idle timeout the server uses for `configured_ms`: at least one minute, at most
    0x7FFFFFFF ms, as documented for the setting."""
    return max(MIN_IDLE_MS, min(MAX_IDLE_MS, int(configured_ms)))


def requested_idle_s(text: str | None) -> float | None:
    """Seconds a Create asked for (rounded to the millisecond), None when it asked for none;
    `NotADuration` when the value is not an xs:duration."""
    if text is None or not text.strip():
        return None
    seconds = parse_duration(text)
    if seconds is None:
        raise NotADuration(text.strip())
    return round(seconds * 1000) / 1000


def effective_idle_s(requested_s: float | None, configured_ms: int) -> float:
    """The shell's idle timeout in (unscaled) seconds: the server's setting when none was asked,
    else the requested value, cut to the server's setting (see the module docstring)."""
    server_s = server_idle_ms(configured_ms) / 1000
    return server_s if requested_s is None else min(requested_s, server_s)


def echo(idle_s: float) -> str:
    """`rsp:IdleTimeOut` as Windows writes it in a Create response: `PT7200.000S`."""
    return f"PT{idle_s:.3f}S"
