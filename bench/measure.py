"""Measuring helpers shared by the benchmarks."""


def peak_rss_mb():
    """This process's peak resident memory in MB (VmHWM: unlike ru_maxrss it does not survive exec, so a child
    never reports its larger parent's peak)."""
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmHWM')) / 1024
