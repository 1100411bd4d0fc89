#!/usr/bin/python3
"""rusage.py - run a command and record its peak RSS and CPU seconds.

    rusage.py OUT COMMAND [ARG...]

For contenders that are one command rather than a daemon (`rclone
copy`): their /proc entry is gone when they are done, so the kernel's
account from wait4() stands in for VmHWM and utime+stime (ru_maxrss is
the same high-water mark, in KiB).  Writes "PEAK_RSS_KIB CPU_SECONDS"
to OUT and exits with the command's status.
"""
import os
import sys


def main():
    out, argv = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    with open(out, "w") as f:
        f.write(f"{ru.ru_maxrss} {ru.ru_utime + ru.ru_stime:.2f}\n")
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
