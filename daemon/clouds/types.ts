/**
 * The interface between the core (config, refresher, server, CLI) and a cloud. A cloud is one folder
 * under clouds/ and one line in clouds/registry.ts; the core never names a cloud or a profile type.
 *
 * Each cloud has two halves, so that what every command needs stays cheap to load:
 *  - the spec (clouds/NAME/index.ts): profile schemas and config checks, read by the config loader on
 *    every start of every command;
 *  - the runtime (loaded on demand): providers, endpoints, and what the CLI prints for the cloud.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ResolvedConfig } from '../config/load.js';
import type { Env } from '../config/paths.js';
import type { KeySigner } from '../keys/signer.js';
import type { Clock } from '../refresh/clock.js';
import type { Credentials, ManagedProvider } from '../providers/types.js';
import type { ServerContext } from '../server/context.js';
import type { CloudSpec, ProfileBase } from './spec-types.js';

export type { CloudSpec, ConfigView, ProfileBase, ProfileTypeSpec } from './spec-types.js';
export type { CertificateInfo, ManagedProvider } from '../providers/types.js';

export interface ProviderTuning {
  /** Attempts per refresh inside a provider; tests lower it so that faults surface at once. */
  maxAttempts?: number;
  /** One overall deadline per upstream call: connect, headers and body (default 10 s). */
  requestTimeoutMs?: number;
  /** Largest upstream answer read (default 256 KiB); larger ones are cut off while streaming. */
  maxBodyBytes?: number;
  now?: () => number;
  /** Longest a credentials request waits on a refresh (default 1 s, what SDK clients wait). */
  requestWaitMs?: number;
  /**
   * A whole refresh (every attempt inside the provider) abandoned after this long; default
   * requestTimeoutMs x maxAttempts plus 15 s for the provider's own retry pauses.
   */
  refreshDeadlineMs?: number;
}

export interface ProviderDeps {
  signer: KeySigner;
  env: Env;
  config: ResolvedConfig;
  tuning: ProviderTuning;
  /** Another profile's credentials, for role chaining (the daemon: its refresher; `auth --direct`: a fetch). */
  source: (profile: string) => () => Promise<Credentials>;
  /** Whether that profile can refresh without a person present. */
  sourceUnattended: (profile: string) => boolean;
  /** Background work a long-running daemon does (certificate renewal); absent in one-shot commands. */
  background?: { clock: Clock; logger?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void } };
}

/** An endpoint style (ECS, IMDS, a metadata server): its routes and, optionally, its hot path. */
export interface Endpoint {
  /** Registered behind the shared guards and peer gate; each route sets config.access. */
  routes: FastifyPluginAsync;
  /**
   * Answers a request before fastify when everything is ready (guards and peer already passed);
   * false hands it to the routes. `url` has doubled slashes collapsed.
   */
  fast?(req: IncomingMessage, res: ServerResponse, url: string): boolean;
  /** The metrics label of one of this endpoint's routes, undefined for a route not its own. */
  label(routeUrl: string): string | undefined;
}

export interface EndpointModule {
  readonly name: string;
  /** One per daemon: per-daemon state (IMDS session tokens) lives in the closure. */
  create(ctx: ServerContext): Endpoint;
}

export interface CloudRuntime {
  /**
   * Loads what the given profile types need before createProvider builds them: a profile type whose
   * provider brings heavy modules is loaded only when a config uses it. Called again on a reload.
   */
  prepare?(types: ReadonlySet<string>): Promise<void>;
  /** Builds the provider of one of this cloud's profiles (p.type is one of the cloud's types); prepare() ran for its type. */
  createProvider(name: string, p: ProfileBase, deps: ProviderDeps): ManagedProvider;
  readonly endpoints: readonly EndpointModule[];
}

/** A cloud as the daemon and the CLI see it: its spec, and the halves loaded on demand. */
export interface CloudModule extends CloudSpec {
  /** Providers and endpoints, loaded when a daemon or a direct fetch needs them. */
  runtime(): Promise<CloudRuntime>;
  /** What the CLI prints for this cloud, loaded by the commands that need it. */
  cli(): Promise<CloudCli>;
}

/** One `credport doctor` line. */
export interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

/** How a client on this machine reaches a profile (credport profiles). */
export interface EndpointListing {
  label: string;
  url: string;
}

export interface CliContext {
  /**
   * For `auth` (fromDaemon, render), `env` and `status` on the CLI's slim path (cli/fast/), only what the
   * daemon's runtime file carries: file, daemon.tokenFile and lockFile, profiles, defaults, defaultProfile.
   */
  config: ResolvedConfig;
  env: Env;
  /** The daemon's base URL for clients (http://127.0.0.1:PORT). */
  baseUrl: string;
}

export interface CloudCli {
  /** Where each of the cloud's profiles is served. */
  listing(ctx: CliContext, profile: string): EndpointListing[];
  /**
   * Shell lines for `credport env` (the profile is one of this cloud's); flags are env's own. May
   * write a client file (0600) that the lines point at.
   */
  env(ctx: CliContext, profile: string, flags: Readonly<Record<string, unknown>>): string[];
  /** `credport auth` output for credentials of this cloud, in one of the cloud's formats. */
  render(c: Credentials, format: string | undefined): string;
  /** Formats `render` knows; the first is the default. */
  readonly formats: readonly string[];
  /** Credentials from the running daemon for `credport auth` (undefined: not reachable). */
  fromDaemon(ctx: CliContext, profile: string, command: string): Promise<Credentials | undefined>;
  /**
   * Output for a format that is not credentials at all (Google's executable response carries a subject
   * token): the whole stdout, and the exit status. Undefined: the format is rendered from credentials.
   */
  special?(ctx: CliContext, profile: string, format: string, direct: boolean): Promise<{ stdout: string; ok: boolean } | undefined>;
  /**
   * The formats `special` answers (it returns undefined for the others). The CLI's slim path, whose
   * config view holds no key for a direct fetch, leaves these to the full path; a cloud with `special`
   * and no list is always left to it.
   */
  readonly specialFormats?: readonly string[];
  /** Doctor checks specific to the cloud (clock against its STS, clients, shell variables). */
  doctor?(ctx: CliContext, health: unknown): Promise<Check[]>;
}
