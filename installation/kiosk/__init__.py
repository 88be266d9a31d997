"""The unattended kiosk: weeks in a gallery without a technician.

Why a package of its own: everything here is about surviving the room, not about the picture —
the course must outlive power cuts and crashes (persist), systemd must see that frames are still
being presented (notify) and restart the piece when they are not (service), a damaged network
must never put an empty screen on the wall by accident (faults), the display may change or
vanish (display), and a technician who comes once a week needs logs and one command to see how
the piece has been (health, status). `runtime.KioskRun` ties these together for one run of the
live app; the app itself only calls it after each presented frame.
"""
