/** Owns every profile's refresher and the wall-clock watchdog that catches missed timers. */
import type { Clock, TimerHandle } from './clock.js';
import type { ProfileRefresher } from './profile-refresher.js';

export class RefreshScheduler {
  #watchdog: TimerHandle | undefined;
  #running = false;

  constructor(
    readonly refreshers: ReadonlyMap<string, ProfileRefresher>,
    private readonly clock: Clock,
    private readonly watchdogMs = 30_000,
  ) {}

  start(): void {
    this.#running = true;
    for (const r of this.refreshers.values()) r.start();
    this.#arm();
  }

  /**
   * Resolves when the fetches running now have settled, or after `boundMs` of real time, whichever is
   * first; `each` is called as each one settles. A real timer, not the clock: a test's clock that stands
   * still must not stop a start.
   */
  settled(boundMs: number, each?: () => void): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, boundMs);
    });
    const all = Promise.all([...this.refreshers.values()].map((r) => r.settled().then(each))).then(() => undefined);
    return Promise.race([all, bound]).finally(() => clearTimeout(timer));
  }

  #arm(): void {
    if (!this.#running) return;
    this.#watchdog = this.clock.setTimer(() => {
      for (const r of this.refreshers.values()) r.tick();
      this.#arm();
    }, this.watchdogMs);
  }

  stop(): void {
    this.#running = false;
    this.#watchdog?.cancel();
    for (const r of this.refreshers.values()) r.stop();
  }

  get(name: string): ProfileRefresher | undefined {
    return this.refreshers.get(name);
  }
}
