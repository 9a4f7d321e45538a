/**
 * Deploys one stack through a change set: create it, show what it changes, execute it (unless a dry
 * run), follow the stack's events until it settles, and read its outputs back. A failed deploy is
 * reported with the first resource that failed and CloudFormation's reason for it.
 */
import {
  type Change,
  type CloudFormationClient,
  CreateChangeSetCommand,
  DeleteChangeSetCommand,
  DeleteStackCommand,
  DescribeChangeSetCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  ExecuteChangeSetCommand,
  type Stack,
  type StackEvent,
} from '@aws-sdk/client-cloudformation';
import { CliError, EXIT } from '../../../cli/cli-error.js';
import { CREDPORT_TAG_KEY } from './cfn.js';

export interface DeployRequest {
  client: CloudFormationClient;
  stackName: string;
  /** What the stack is to credport (issuer, role, rolesanywhere): its tag, and how it is recognised. */
  kind: string;
  templateBody: string;
  dryRun: boolean;
  log: (line: string) => void;
  /** Between polls (default 5 s; tests against a local endpoint use less). */
  pollMs?: number;
  /** The whole deploy (default 45 min: a new CloudFront distribution alone takes minutes). */
  timeoutMs?: number;
}

export interface DeployResult {
  outputs: Record<string, string>;
  /** No change set was executed: a dry run, or nothing to change. */
  executed: boolean;
  changes: string[];
}

const SETTLED_OK = new Set(['CREATE_COMPLETE', 'UPDATE_COMPLETE', 'IMPORT_COMPLETE']);
const BUSY = /_IN_PROGRESS$/;
const NO_CHANGES = /didn't contain changes|No updates are to be performed/i;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function describeStack(client: CloudFormationClient, stackName: string): Promise<Stack | undefined> {
  try {
    const out = await client.send(new DescribeStacksCommand({ StackName: stackName }));
    return out.Stacks?.[0];
  } catch (err) {
    if ((err as { name?: string }).name === 'ValidationError' && /does not exist/.test((err as Error).message)) return undefined;
    throw err;
  }
}

/** Whether an existing stack may be changed by this deploy, and as what kind of change set. */
function changeSetType(stack: Stack | undefined, stackName: string, kind: string): 'CREATE' | 'UPDATE' {
  if (stack === undefined || stack.StackStatus === 'REVIEW_IN_PROGRESS') return 'CREATE';
  const tag = stack.Tags?.find((t) => t.Key === CREDPORT_TAG_KEY)?.Value;
  if (tag !== kind) {
    throw new CliError(
      `stack ${stackName} already exists and is not a credport ${kind} stack${tag ? ` (it is a ${tag} stack)` : ''}`,
      EXIT.usage,
      'choose another name with --stack-name',
    );
  }
  if (stack.StackStatus === 'ROLLBACK_COMPLETE') {
    throw new CliError(
      `stack ${stackName} is ROLLBACK_COMPLETE (its first deploy failed) and can only be deleted`,
      EXIT.failure,
      `aws cloudformation delete-stack --stack-name ${stackName}, then run this again`,
    );
  }
  if (BUSY.test(stack.StackStatus ?? '')) {
    throw new CliError(`stack ${stackName} is ${stack.StackStatus}`, EXIT.failure, 'wait for it to settle, then run this again');
  }
  return 'UPDATE';
}

function describeChange(change: Change): string {
  const r = change.ResourceChange;
  if (r === undefined) return 'unknown change';
  const replacement = r.Replacement === 'True' ? ' (replaced)' : r.Replacement === 'Conditional' ? ' (may be replaced)' : '';
  return `${r.Action ?? '?'} ${r.LogicalResourceId ?? '?'} (${r.ResourceType ?? '?'})${replacement}`;
}

async function waitForChangeSet(req: DeployRequest, changeSetName: string, deadline: number) {
  for (;;) {
    const cs = await req.client.send(new DescribeChangeSetCommand({ StackName: req.stackName, ChangeSetName: changeSetName }));
    if (cs.Status === 'CREATE_COMPLETE') return { noChanges: false, changes: (cs.Changes ?? []).map(describeChange) };
    if (cs.Status === 'FAILED') {
      if (NO_CHANGES.test(cs.StatusReason ?? '')) return { noChanges: true, changes: [] };
      throw new CliError(`stack ${req.stackName}: the change set failed: ${oneLine(cs.StatusReason ?? 'no reason given')}`, EXIT.failure);
    }
    if (Date.now() > deadline) throw new CliError(`stack ${req.stackName}: the change set was not ready in time`, EXIT.failure);
    await sleep(req.pollMs ?? 5000);
  }
}

function eventLine(e: StackEvent): string {
  const reason = e.ResourceStatusReason ? `: ${oneLine(e.ResourceStatusReason)}` : '';
  return `  ${e.LogicalResourceId ?? '?'} (${e.ResourceType ?? '?'}) ${e.ResourceStatus ?? '?'}${reason}`;
}

/**
 * Events not seen before, oldest first. DescribeStackEvents pages newest first, so paging stops at the
 * first event already seen (no clock comparison: this machine's clock may differ from AWS's).
 */
async function newEvents(req: DeployRequest, seen: Set<string>): Promise<StackEvent[]> {
  const fresh: StackEvent[] = [];
  let token: string | undefined;
  // Bounded: a deploy has at most a few pages of events between two polls.
  for (let page = 0; page < 20; page++) {
    const out = await req.client.send(new DescribeStackEventsCommand({ StackName: req.stackName, ...(token ? { NextToken: token } : {}) }));
    let reachedSeen = false;
    for (const e of out.StackEvents ?? []) {
      if (e.EventId === undefined) continue;
      if (seen.has(e.EventId)) {
        reachedSeen = true;
        break;
      }
      seen.add(e.EventId);
      fresh.push(e);
    }
    token = out.NextToken;
    if (reachedSeen || token === undefined) break;
  }
  return fresh.reverse();
}

/** Upstream text on one bounded line: a resource's reason can be long and carry anything. */
export function oneLine(text: string, max = 400): string {
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}

const CANCELLED = /cancelled/i;

/**
 * Why a deploy ended in `status`, from its events (oldest first): the first resource that failed for a
 * reason of its own, not one cancelled because of it, nor the stack's summary of them.
 */
export function failureReport(stackName: string, status: string, events: readonly StackEvent[], stackReason?: string): string {
  const failed = events.filter((e) => /_FAILED$/.test(e.ResourceStatus ?? '') && e.ResourceType !== 'AWS::CloudFormation::Stack');
  const cause = failed.find((e) => !CANCELLED.test(e.ResourceStatusReason ?? '')) ?? failed[0];
  const why = cause
    ? `${cause.LogicalResourceId ?? '?'} (${cause.ResourceType ?? '?'}): ${oneLine(cause.ResourceStatusReason ?? cause.ResourceStatus ?? '')}`
    : oneLine(stackReason ?? 'no reason given');
  return `stack ${stackName} ended ${status}: ${why}`;
}

async function followStack(req: DeployRequest, seen: Set<string>, deadline: number): Promise<Stack> {
  const all: StackEvent[] = [];
  for (;;) {
    for (const e of await newEvents(req, seen)) {
      all.push(e);
      req.log(eventLine(e));
    }
    const stack = await describeStack(req.client, req.stackName);
    const status = stack?.StackStatus ?? 'DELETE_COMPLETE';
    if (stack !== undefined && SETTLED_OK.has(status)) return stack;
    if (!BUSY.test(status)) {
      throw new CliError(
        failureReport(req.stackName, status, all, stack?.StackStatusReason),
        EXIT.failure,
        'fix the cause, then run this again',
      );
    }
    if (Date.now() > deadline) {
      throw new CliError(
        `stack ${req.stackName} is still ${status}`,
        EXIT.failure,
        'it continues in CloudFormation; run this again to read its outputs',
      );
    }
    await sleep(req.pollMs ?? 5000);
  }
}

function outputsOf(stack: Stack | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of stack?.Outputs ?? []) if (o.OutputKey && o.OutputValue !== undefined) out[o.OutputKey] = o.OutputValue;
  return out;
}

export async function deployStack(req: DeployRequest): Promise<DeployResult> {
  const deadline = Date.now() + (req.timeoutMs ?? 45 * 60_000);
  const existing = await describeStack(req.client, req.stackName);
  const type = changeSetType(existing, req.stackName, req.kind);
  const changeSetName = `credport-${Date.now()}`;
  await req.client.send(
    new CreateChangeSetCommand({
      StackName: req.stackName,
      ChangeSetName: changeSetName,
      ChangeSetType: type,
      TemplateBody: req.templateBody,
      Capabilities: ['CAPABILITY_NAMED_IAM'],
      Tags: [{ Key: CREDPORT_TAG_KEY, Value: req.kind }],
      Description: `credport setup aws (${req.kind})`,
    }),
  );
  const { noChanges, changes } = await waitForChangeSet(req, changeSetName, deadline);
  const discard = async (): Promise<void> => {
    await req.client.send(new DeleteChangeSetCommand({ StackName: req.stackName, ChangeSetName: changeSetName }));
    // A CREATE change set made an empty stack in REVIEW_IN_PROGRESS: leave nothing behind.
    if (type === 'CREATE') await req.client.send(new DeleteStackCommand({ StackName: req.stackName }));
  };
  if (noChanges) {
    req.log(`stack ${req.stackName}: up to date`);
    await discard();
    return { outputs: outputsOf(existing), executed: false, changes };
  }
  req.log(`stack ${req.stackName}: ${type === 'CREATE' ? 'create' : 'update'}`);
  for (const c of changes) req.log(`  ${c}`);
  if (req.dryRun) {
    await discard();
    req.log(`stack ${req.stackName}: dry run, change set deleted, nothing changed`);
    return { outputs: outputsOf(existing), executed: false, changes };
  }
  // What happened before this deploy is history, not progress.
  const seen = new Set<string>();
  await newEvents(req, seen);
  await req.client.send(new ExecuteChangeSetCommand({ StackName: req.stackName, ChangeSetName: changeSetName }));
  const stack = await followStack(req, seen, deadline);
  req.log(`stack ${req.stackName}: ${stack.StackStatus}`);
  return { outputs: outputsOf(stack), executed: true, changes };
}
