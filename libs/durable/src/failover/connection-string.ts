import { messages } from '../durable.messages';
import { InvalidArgumentError } from '../errors';

/** libpq's `target_session_attrs`: which server of the list a session may use. */
export type TargetSessionAttrs =
  'any' | 'read-write' | 'read-only' | 'primary' | 'standby' | 'prefer-standby';

const TARGETS: readonly TargetSessionAttrs[] = [
  'any',
  'read-write',
  'read-only',
  'primary',
  'standby',
  'prefer-standby',
];

export interface HostAndPort {
  host: string;
  port: number;
}

/** A libpq connection string with one or more hosts, as far as node-postgres can use it. */
export interface MultiHostConnectionString {
  hosts: HostAndPort[];
  user?: string;
  password?: string;
  database?: string;
  targetSessionAttrs: TargetSessionAttrs;
  /** libpq `connect_timeout`, in ms (per host). */
  connectTimeoutMs?: number;
  /** From `sslmode`: false (disable), no verification (allow, prefer, require), verified (verify-ca, verify-full). */
  ssl?: boolean | { rejectUnauthorized: boolean };
  applicationName?: string;
}

/** Parameters honoured besides hosts, ports, user, password and database; any other is an error. */
const PARAMETERS = new Set(['target_session_attrs', 'connect_timeout', 'sslmode', 'application_name']);

/**
 * Parses a libpq connection string with several hosts, in URI form
 * (`postgres://user:pass@db1:5432,db2:5432/app?target_session_attrs=read-write`) or keyword form
 * (`host=db1,db2 port=5432 dbname=app target_session_attrs=read-write`). A parameter node-postgres
 * cannot honour through this path is refused rather than ignored (e.g. `sslrootcert`).
 */
export function parseMultiHostConnectionString(text: string): MultiHostConnectionString {
  const fields = /^postgres(ql)?:\/\//i.test(text) ? fromUri(text) : fromKeywords(text);
  const hostNames = (fields.host ?? 'localhost').split(',');
  const ports = (fields.port ?? '5432').split(',');
  if (ports.length !== 1 && ports.length !== hostNames.length) {
    throw invalid(`${ports.length} ports for ${hostNames.length} hosts`);
  }
  const hosts = hostNames.map((host, i) => {
    const port = Number(ports.length === 1 ? ports[0] : ports[i]);
    if (!host || !Number.isInteger(port) || port < 1 || port > 65535)
      throw invalid(`bad host "${host}:${port}"`);
    return { host, port };
  });
  for (const key of Object.keys(fields.parameters)) {
    if (!PARAMETERS.has(key)) throw invalid(`parameter "${key}" is not supported here`);
  }
  const { target_session_attrs, connect_timeout, sslmode, application_name } = fields.parameters;
  const target = (target_session_attrs ?? 'any') as TargetSessionAttrs;
  if (!TARGETS.includes(target)) throw invalid(`target_session_attrs "${target_session_attrs}"`);
  const timeout = connect_timeout === undefined ? undefined : Number(connect_timeout);
  if (timeout !== undefined && !(timeout > 0)) throw invalid(`connect_timeout "${connect_timeout}"`);
  return {
    hosts,
    user: fields.user,
    password: fields.password,
    database: fields.database,
    targetSessionAttrs: target,
    connectTimeoutMs: timeout === undefined ? undefined : timeout * 1000,
    ssl: sslOf(sslmode),
    applicationName: application_name,
  };
}

interface RawFields {
  host?: string;
  port?: string;
  user?: string;
  password?: string;
  database?: string;
  parameters: Record<string, string>;
}

function fromUri(text: string): RawFields {
  const rest = text.replace(/^postgres(ql)?:\/\//i, '');
  const end = rest.search(/[/?]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const tail = end === -1 ? '' : rest.slice(end);
  const at = authority.lastIndexOf('@');
  const userInfo = at === -1 ? undefined : authority.slice(0, at);
  const hostList = at === -1 ? authority : authority.slice(at + 1);
  const [user, password] = userInfo === undefined ? [] : splitOnce(userInfo, ':');
  const hosts: string[] = [];
  const ports: string[] = [];
  for (const entry of hostList ? hostList.split(',') : []) {
    const match = /^(\[[^\]]+\]|[^:]*)(?::(\d*))?$/.exec(entry);
    if (!match) throw invalid(`bad host "${entry}"`);
    hosts.push(decode(match[1].replace(/^\[|\]$/g, '')));
    ports.push(match[2] || '5432');
  }
  const [path, query] = splitOnce(tail, '?');
  const database = path && path !== '/' ? decode(path.slice(1)) : undefined;
  const parameters: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(query ?? '')) parameters[key] = value;
  return {
    host: hosts.length > 0 ? hosts.join(',') : undefined,
    port: ports.length > 0 ? ports.join(',') : undefined,
    user: user === undefined ? undefined : decode(user),
    password: password === undefined ? undefined : decode(password),
    database,
    parameters,
  };
}

function fromKeywords(text: string): RawFields {
  const fields: RawFields = { parameters: {} };
  const pattern = /\s*([A-Za-z_]+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S*))/y;
  let offset = 0;
  while (offset < text.length) {
    if (/^\s*$/.test(text.slice(offset))) break;
    pattern.lastIndex = offset;
    const match = pattern.exec(text);
    if (!match) throw invalid(`cannot read "${text.slice(offset, offset + 20)}"`);
    offset = pattern.lastIndex;
    const key = match[1];
    const value = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3];
    if (key === 'host' || key === 'port' || key === 'user' || key === 'password') fields[key] = value;
    else if (key === 'dbname') fields.database = value;
    else fields.parameters[key] = value;
  }
  return fields;
}

function sslOf(mode: string | undefined): MultiHostConnectionString['ssl'] {
  switch (mode) {
    case undefined:
      return undefined;
    case 'disable':
      return false;
    case 'allow':
    case 'prefer':
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full':
      return { rejectUnauthorized: true };
    default:
      throw invalid(`sslmode "${mode}"`);
  }
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const index = text.indexOf(separator);
  return index === -1 ? [text, undefined] : [text.slice(0, index), text.slice(index + 1)];
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid('bad percent-encoding');
  }
}

function invalid(reason: string): InvalidArgumentError {
  return new InvalidArgumentError(messages.invalidConnectionString(reason));
}
