#!/usr/bin/python3
"""bench/restore/run1.py - one VMM run of bench/restore_bench.sh, timed on the host clock.

  run1.py [options] -- CMD [ARGS...]

Starts CMD (stdin, stdout and stderr pipes read here), and from the moment
--ready TEXT has appeared on its stdout (at once without --ready) writes the
probe line `echo TAG$((6*7))` (--tag TAG, default RB) to its stdin, again
every --every MS (default 20) until the line TAG42 comes back on its stdout:
the guest's shell answered on the console (the tty's echo of the probe shows
"TAG$((6*7))", never TAG42, so only the shell can answer; a restore's own tag
tells its answer from one to a probe queued before the snapshot). Then,
optionally, once the console has been quiet for a second (the probes typed
meanwhile answered), it takes a snapshot (--ember-snapshot DIR SOCKET:
the control socket's request snapshot {command take, path DIR}, docs/PROTOCOL.md;
--qemu-migrate QMP FILE: QMP
`migrate exec:cat > FILE` until query-migrate says completed), and ends CMD
(SIGTERM, SIGKILL after 5 s).

The harness answers the guest's cursor position requests (ESC [ 6 n) as a
terminal does (class Terminal): busybox's line editor asks at every prompt
and, unanswered, sleeps 20 ms after each line it reads.

--ahead SOCKET DIR: CMD is a VMM started ahead of its snapshot (`ember run
--restore-on-request --socket SOCKET`): once SOCKET answers the hello (the
VMM's KVM VM made), the clock starts, the request restore {path DIR} goes
out and the probe is typed (the VMM's console reads it once the guest runs).
The time until then is logged on stderr (startup).

Prints one line: console_ms running_ms take_ms typed
  console_ms  CLOCK_MONOTONIC from just before the fork (--ahead: the restore
              request) to RB42 read
  running_ms  to the first stderr line containing "vCPUs running" (ember -v:
              its vCPU threads started, the first KVM_RUN follows), "-" if none
  take_ms     the snapshot's time, "-" if none
  typed       how many probe lines were written
Exits 1 with a message on stderr if the answer does not come within
--timeout seconds.
"""
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

PROBE = "echo {}$((6*7))\n"
ANSWER = "{}42"
QUIET = 1.0  # s of console silence before a snapshot: the queued probes answered


class Terminal:
    """Answers the guest's cursor position requests (ESC [ 6 n) as a terminal
    does. The guest's shell (busybox ash's line editor) asks at every prompt;
    unanswered, it sleeps 20 ms after reading the next line (lineedit.c, for
    the reply it still expects) before it runs it."""

    def __init__(self, stdin):
        self.stdin = stdin
        self.col = 0  # printable characters since the last CR or LF
        self.seq = None  # an escape sequence being read
        self.answered = 0

    def feed(self, data):
        for b in data:
            if self.seq is not None:
                self.seq.append(b)
                if len(self.seq) == 2 and b != ord("["):
                    self.seq = None
                elif len(self.seq) > 2 and 0x40 <= b <= 0x7E:  # its final byte
                    if self.seq == b"\x1b[6n":
                        try:
                            self.stdin.write(b"\x1b[1;%dR" % (self.col + 1))
                            self.answered += 1
                        except BrokenPipeError:
                            pass
                    self.seq = None
                elif len(self.seq) > 16:
                    self.seq = None
            elif b == 0x1B:
                self.seq = bytearray([b])
            elif b in (0x0A, 0x0D):
                self.col = 0
            elif 0x20 <= b <= 0x7E:
                self.col += 1


def ms(t0):
    return (time.monotonic() - t0) * 1000.0


def qmp(path, cmds):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = s.makefile("rwb", buffering=0)
    f.readline()  # greeting

    def call(cmd, args=None):
        msg = {"execute": cmd}
        if args is not None:
            msg["arguments"] = args
        f.write(json.dumps(msg).encode() + b"\n")
        while True:
            r = json.loads(f.readline())
            if "return" in r or "error" in r:
                if "error" in r:
                    raise RuntimeError(f"QMP {cmd}: {r['error']}")
                return r["return"]

    call("qmp_capabilities")
    return call, s


def main():
    a = sys.argv[1:]
    opts = {"timeout": 300.0, "every": 0.02}
    while a and a[0] != "--":
        o = a.pop(0)
        if o == "--ready":
            opts["ready"] = a.pop(0).encode()
        elif o == "--every":
            opts["every"] = float(a.pop(0)) / 1000.0
        elif o == "--timeout":
            opts["timeout"] = float(a.pop(0))
        elif o == "--ember-snapshot":
            opts["ember"] = (a.pop(0), a.pop(0))
        elif o == "--qemu-migrate":
            opts["qemu"] = (a.pop(0), a.pop(0))
        elif o == "--tag":
            opts["tag"] = a.pop(0)
        elif o == "--ahead":
            opts["ahead"] = (a.pop(0), a.pop(0))
        elif o == "--stderr-log":
            opts["errlog"] = a.pop(0)
        else:
            sys.exit(f"run1.py: unknown option {o}")
    if not a or len(a) < 2:
        sys.exit("usage: run1.py [options] -- CMD [ARGS...]")
    cmd = a[1:]
    tag = opts.get("tag", "RB")
    probe = PROBE.format(tag).encode()
    answer = ANSWER.format(tag).encode()
    errlog = open(opts.get("errlog", os.devnull), "ab")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, bufsize=0)
    os.set_blocking(p.stdout.fileno(), False)
    os.set_blocking(p.stderr.fileno(), False)
    term = Terminal(p.stdin)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ, "out")
    sel.register(p.stderr, selectors.EVENT_READ, "err")
    out = b""
    err = b""
    running = None
    console = None
    ready = "ready" not in opts
    last_probe = 0.0
    typed = 0
    deadline = t0 + opts["timeout"]
    if "ahead" in opts:  # the VMM waits on its socket: the clock starts at the request
        sock, d = opts["ahead"]
        c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        while True:
            if time.monotonic() > deadline or p.poll() is not None:
                sys.exit(f"run1.py: no control socket at {sock} (status {p.returncode})")
            try:
                c.connect(sock)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.005)
        c.recv(65536)  # the server's hello: its VM is made ahead by now
        c.send(json.dumps({"hello": {"protocol": 1, "client": "restore-bench"}}).encode())
        print(f"run1.py: startup {ms(t0):.1f} ms", file=sys.stderr)
        t0 = time.monotonic()
        deadline = t0 + opts["timeout"]
        c.send(json.dumps({"id": 1, "request": "restore", "args": {"path": d}}).encode())
        sel.register(c, selectors.EVENT_READ, "ctl")
    while console is None:
        now = time.monotonic()
        if now > deadline or p.poll() is not None:
            break
        if ready and (typed == 0 or now - last_probe >= opts["every"]):
            try:
                p.stdin.write(probe)
            except BrokenPipeError:
                break
            last_probe = now
            typed += 1
        # sleep until there is output or the next probe is due (no
        # polling: under TCG each wakeup costs the sandbox's one CPU about
        # 0.3 ms, which a 5 ms poll took from the VMM being timed)
        wait = deadline - now
        if ready:
            wait = min(wait, opts["every"] - (now - last_probe))
        for key, _ in sel.select(max(0.0, min(wait, 0.5))):
            if key.data == "ctl":
                sel.unregister(c)
                resp = c.recv(65536)
                r = json.loads(resp) if resp else {"ok": False, "closed": p.poll()}
                if not r.get("ok"):
                    print(f"run1.py: restore failed: {r}", file=sys.stderr)
                    deadline = 0
                continue
            try:
                data = os.read(key.fileobj.fileno(), 65536)
            except BlockingIOError:
                continue
            if not data:  # the VMM closed it (exited): p.poll() tells
                sel.unregister(key.fileobj)
                continue
            if key.data == "err":
                errlog.write(data)
                err += data
                if running is None and b"vCPUs running" in err:
                    running = ms(t0)
                err = err[-4096:]
            else:
                term.feed(data)
                out += data
                if not ready and opts["ready"] in out:
                    ready = True
                if answer in out:
                    console = ms(t0)
                out = out[-4096:]
    take = None
    if console is not None and ("ember" in opts or "qemu" in opts):
        # the probes typed before the answer are still queued in the guest's
        # tty: the snapshot waits until the shell has answered them all and
        # the console has been quiet for QUIET s (the shell at its prompt,
        # reading), so a restore has none left to answer
        quiet_from = time.monotonic()
        while time.monotonic() - quiet_from < QUIET and time.monotonic() < deadline:
            for key, _ in sel.select(0.05):
                try:
                    data = os.read(key.fileobj.fileno(), 65536)
                except BlockingIOError:
                    continue
                if key.data == "out" and data:
                    term.feed(data)
                    quiet_from = time.monotonic()
                elif key.data == "err":
                    errlog.write(data)
    if console is not None and "ember" in opts:
        d, sock = opts["ember"]
        s0 = time.monotonic()
        c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        c.connect(sock)
        c.recv(65536)  # the server's hello
        c.send(json.dumps({"hello": {"protocol": 1, "client": "restore-bench"}}).encode())
        c.send(json.dumps({"id": 1, "request": "snapshot",
                           "args": {"command": "take", "path": d}}).encode())
        c.settimeout(opts["timeout"])
        resp = c.recv(65536)
        c.close()
        r = json.loads(resp) if resp else {"ok": False, "closed": p.poll()}
        take = ms(s0)
        if not r.get("ok"):
            print(f"run1.py: snapshot failed: {r}", file=sys.stderr)
            console = None
    if console is not None and "qemu" in opts:
        path, f = opts["qemu"]
        s0 = time.monotonic()
        call, s = qmp(path, None)
        call("migrate", {"uri": f"exec:cat > {f}"})
        while True:
            st = call("query-migrate").get("status")
            if st == "completed":
                break
            if st in ("failed", "cancelled"):
                print(f"run1.py: migrate {st}", file=sys.stderr)
                console = None
                break
            time.sleep(0.01)
        take = ms(s0)
        s.close()
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    try:
        errlog.write(p.stderr.read() or b"")
    except (BlockingIOError, ValueError):
        pass
    if console is None:
        print(f"run1.py: no answer on the console within {opts['timeout']:.0f} s "
              f"(status {p.returncode}): {' '.join(cmd)}", file=sys.stderr)
        sys.exit(1)
    f = lambda v: "-" if v is None else f"{v:.1f}"
    print(f(console), f(running), f(take), typed)


if __name__ == "__main__":
    main()
