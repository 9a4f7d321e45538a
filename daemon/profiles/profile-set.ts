/**
 * The daemon's profiles, each with its provider, refresher and description, kept together so that a
 * profile is added, replaced or dropped as one. A reload asks it what changed.
 */
import type { ResolvedConfig } from '../config/load.js';
import type { ManagedProvider } from '../providers/types.js';
import type { ProviderDescription } from '../providers/types.js';
import type { ProfileRefresher } from '../refresh/profile-refresher.js';

export interface ProfileEntry {
  readonly name: string;
  /** The cloud that registers the profile's type (aws, gcp). */
  readonly cloud: string;
  readonly provider: ManagedProvider;
  readonly refresher: ProfileRefresher;
  readonly description: ProviderDescription;
  /** allow_executables, when set. */
  readonly executables?: readonly string[];
  /** What its credentials depend on: a changed fingerprint means new credentials are needed. */
  readonly fingerprint: string;
}

/** What the server may see of the profiles. */
export interface ServedProfiles {
  get(name: string): ProfileEntry | undefined;
  /** The profile a cloud's unnamed endpoints serve (AWS: /v1/credentials, IMDS). */
  defaultOf(cloud: string): string | undefined;
  entries(): IterableIterator<ProfileEntry>;
}

export interface ProfileChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

export class ProfileSet implements ServedProfiles {
  /** Live view for the scheduler and the metrics, which only drive refreshers. */
  readonly refreshers = new Map<string, ProfileRefresher>();
  readonly #entries = new Map<string, ProfileEntry>();
  #defaults: Readonly<Record<string, string>> = {};

  get(name: string): ProfileEntry | undefined {
    return this.#entries.get(name);
  }

  entries(): IterableIterator<ProfileEntry> {
    return this.#entries.values();
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }

  defaultOf(cloud: string): string | undefined {
    return this.#defaults[cloud];
  }

  setDefaults(defaults: Readonly<Record<string, string>>): void {
    this.#defaults = defaults;
  }

  add(entry: ProfileEntry): void {
    this.drop(entry.name);
    this.#entries.set(entry.name, entry);
    this.refreshers.set(entry.name, entry.refresher);
  }

  /** Stops the profile's refresher and releases its provider. */
  drop(name: string): void {
    const e = this.#entries.get(name);
    if (!e) return;
    e.refresher.stop();
    e.provider.destroy?.();
    this.#entries.delete(name);
    this.refreshers.delete(name);
  }

  dropAll(): void {
    for (const name of this.names()) this.drop(name);
  }

  /** Profiles a new config adds, removes, or changes (a different fingerprint). */
  diff(next: ResolvedConfig, fingerprint: (name: string, cfg: ResolvedConfig) => string): ProfileChanges {
    const added = [...next.profiles.keys()].filter((n) => !this.#entries.has(n));
    const removed = this.names().filter((n) => !next.profiles.has(n));
    const changed = [...next.profiles.keys()].filter((n) => {
      const e = this.#entries.get(n);
      return e !== undefined && e.fingerprint !== fingerprint(n, next);
    });
    return { added, removed, changed };
  }
}
