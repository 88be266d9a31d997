"""`python -m installation install-service`: systemd supervises the piece, and it starts by itself.

Why it exists: a piece that runs for weeks must come back after a crash or a hang without
anyone there, and start when the gallery switches the PC on. A systemd *user* unit does both on
a plain Debian/Ubuntu desktop with no extra software: `Type=notify` (the piece says READY=1 after
its first frame), `WatchdogSec=` (no frame presented for that long = hung: killed and restarted),
`Restart=always`, and a crash-loop limit (`StartLimitIntervalSec=`/`StartLimitBurst=`). Exit
status 2 — a mistake in the settings or files — is not restarted: it would only fail again.

The unit belongs to the graphical session (it needs the display). Desktops that start
graphical-session.target (GNOME) start it through `WantedBy=`; for the others an XDG autostart
entry hands the session's DISPLAY to systemd and starts the unit at login. Nothing is
overwritten without `--force`, and then the old file is kept beside it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from ..settings import REPO_ROOT

UNIT_NAME = "lapses.service"
DESKTOP_NAME = "lapses.desktop"
WATCHDOG_S = 30            # a frame takes milliseconds; 30 s without one is a hang
START_LIMIT = (600, 10)    # at most 10 starts in 10 minutes, then systemd gives up (see README)


def _quote(arg: str) -> str:
    """An argument as systemd's ExecStart= reads it."""
    if arg and not any(c in arg for c in ' \t"\'\\;$%'):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$") + '"'


def exec_args(python: str, settings_file: Path | None, overrides: list[str]) -> list[str]:
    args = [python, "-m", "installation", "--kiosk"]
    if settings_file is not None:
        args += ["--settings", str(settings_file)]
    for text in overrides:
        args += ["--set", text]
    return args


def unit_text(args: list[str], workdir: Path) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M")
    interval, burst = START_LIMIT
    return f"""\
# Lapses in a gallery: written by `python -m installation install-service` on {stamp}.
# See the README's "Running in a gallery". systemctl --user status lapses; journalctl --user -u lapses
[Unit]
Description=Lapses, a generative artwork about dementia (kiosk)
Documentation=file://{REPO_ROOT / 'README.md'}
After=graphical-session.target
PartOf=graphical-session.target
# a crash loop: more than {burst} starts within {interval} s and systemd stops trying
StartLimitIntervalSec={interval}
StartLimitBurst={burst}

[Service]
Type=notify
NotifyAccess=main
ExecStart={' '.join(_quote(a) for a in args)}
WorkingDirectory={str(workdir).replace('%', '%%')}
Environment=PYTHONUNBUFFERED=1
# loading the model before the first frame may take a while on a cold disk
TimeoutStartSec=300
# the piece pings after each presented frame: {WATCHDOG_S} s without one is a hang -> killed, restarted
WatchdogSec={WATCHDOG_S}
Restart=always
RestartSec=5
# 2 = a mistake in the settings or files: restarting would not mend it
RestartPreventExitStatus=2
TimeoutStopSec=20

[Install]
WantedBy=graphical-session.target
"""


def desktop_text() -> str:
    return f"""\
[Desktop Entry]
# Lapses in a gallery: written by `python -m installation install-service`.
# At login, hand this session's display to the user's systemd and start the supervised piece
# (desktops that start graphical-session.target themselves make this a harmless repeat).
Type=Application
Name=Lapses (kiosk)
Comment=Start the Lapses systemd user unit in this graphical session
Exec=sh -c "systemctl --user import-environment DISPLAY XAUTHORITY WAYLAND_DISPLAY XDG_SESSION_TYPE; systemctl --user start {UNIT_NAME}"
X-GNOME-Autostart-enabled=true
NoDisplay=true
"""


def config_home(environ=None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME", "")
    return Path(base) if base and Path(base).is_absolute() else Path(environ.get("HOME", str(Path.home()))) / ".config"


def _write(path: Path, text: str, force: bool) -> str:
    """Write a file unless an identical one is there; an other one only with force (kept as .bak-<time>)."""
    if path.exists():
        if path.read_text(encoding="utf-8", errors="replace").split("\n", 2)[2:] == text.split("\n", 2)[2:]:
            return f"unchanged {path}"
        if not force:
            raise FileExistsError(f"{path} exists and differs; add --force to replace it (the old one is kept "
                                  f"beside it as {path.name}.bak-<time>)")
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, backup)
        note = f" (the old one is now {backup.name})"
    else:
        note = ""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return f"wrote {path}{note}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m installation install-service",
                                description="Write a systemd user unit that runs the piece in kiosk mode, restarts "
                                            "it when it crashes or hangs, and an XDG autostart entry that starts it "
                                            "at login. Prints the commands that switch it on.")
    p.add_argument("--settings", type=Path, metavar="FILE", help="the settings file the piece should use "
                                                                 "(default: the project's settings.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="a setting for the piece, as for the piece itself (repeatable)")
    p.add_argument("--print", action="store_true", help="print the unit and the autostart entry; write nothing")
    p.add_argument("--no-autostart", action="store_true", help="write the unit only")
    p.add_argument("--force", action="store_true", help="replace files that differ (the old ones are kept)")
    return p


def systemd_problem(booted: Path = Path("/run/systemd/system")) -> str | None:
    """Why the unit would not run on this machine (no systemctl, or not booted with systemd, as in
    most containers), or None."""
    if shutil.which("systemctl") is None:
        return "this machine has no systemctl (install the Debian package systemd)"
    if not booted.is_dir():
        return "this machine was not started by systemd (a container, or another init)"
    return None


def install_service(argv, usage_error) -> int:
    from ..settings import load_settings
    args = parser().parse_args(argv)
    settings_file = args.settings.resolve() if args.settings is not None else None
    load_settings(settings_file, args.set)          # a bad file or key stops here, exit 2, nothing written
    unit = unit_text(exec_args(sys.executable, settings_file, args.set), REPO_ROOT)
    unit_path = config_home() / "systemd" / "user" / UNIT_NAME
    desktop_path = config_home() / "autostart" / DESKTOP_NAME
    if args.print:
        print(f"# {unit_path}\n{unit}")
        if not args.no_autostart:
            print(f"# {desktop_path}\n{desktop_text()}")
        return 0
    try:
        done = [_write(unit_path, unit, args.force)]
        if not args.no_autostart:
            done.append(_write(desktop_path, desktop_text(), args.force))
    except FileExistsError as e:
        raise usage_error(str(e)) from None
    except OSError as e:
        raise usage_error(f"cannot write {e.filename}: {e.strerror}") from None
    print("\n".join(done))
    problem = systemd_problem()
    if problem:
        print(f"Note: {problem}, so nothing here will start the unit. It is written for a machine that runs "
              f"systemd; here, run the piece under your own supervisor: ./lapses run --kiosk", file=sys.stderr)
    print(f"""
Switch it on (once):
  systemctl --user daemon-reload
  systemctl --user enable {UNIT_NAME}      # start with the graphical session from now on
  systemctl --user start {UNIT_NAME}       # and now
  loginctl enable-linger                  # the user's systemd from boot on
                                          # (if refused: sudo loginctl enable-linger {os.environ.get('USER', '$USER')})
Then set the desktop to log this user in automatically (README: "Running in a gallery").
See how it is doing: python -m installation status, systemctl --user status lapses""")
    return 0
