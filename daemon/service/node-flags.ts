/**
 * The flags node runs the daemon with, wherever credport writes the command line itself: the systemd
 * unit, the launchd plist, and the benchmark (which measures the daemon as these services run it).
 *
 * --v8-pool-size=1: V8 starts four helper threads for garbage collection and background compilation
 * by default, whatever the machine. The daemon's heap is about 10 MB and it spends its hours asleep,
 * so one helper does that work as well; the three threads it saves are about 1-2 MB of resident memory
 * (their stacks and malloc arenas) on a laptop. Serving figures were unchanged in paired bench runs.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--v8-pool-size=1'];
