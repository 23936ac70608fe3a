// End-to-end checks of Sluice's MCP gateway with the official TypeScript MCP client
// (@modelcontextprotocol/sdk), against the gateway fronting
// @modelcontextprotocol/server-everything. Driven by ts_test.go; runnable by hand too
// (see README.md).
//
// Environment:
//   GATEWAY_URL    the gateway's MCP endpoint (http://127.0.0.1:PORT/mcp)
//   GATEWAY_URL_2  a second gateway with the same configuration and session key
//   KEY_FULL       API key of team platform (every tool)
//   KEY_LIMITED    API key of team interns (ev_echo and ev_get-resource* only, two
//                  tools/call per minute per tool)
//   DIRECT=1       GATEWAY_URL is server-everything itself: no prefix, no keys, no access
//                  rules, no rate limit, no second instance. For debugging the harness.
//   TOOL_PREFIX    default "ev_" ("" with DIRECT=1)
//
// Prints one JSON line per check, {"check", "ok", "detail"}, and exits 1 if any failed.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

const env = process.env;
const DIRECT = env.DIRECT === '1' || env.DIRECT === 'true';
const URL1 = env.GATEWAY_URL;
const URL2 = env.GATEWAY_URL_2;
const KEY_FULL = env.KEY_FULL ?? '';
const KEY_LIMITED = env.KEY_LIMITED ?? '';
const P = env.TOOL_PREFIX ?? (DIRECT ? '' : 'ev_');
const CALL_TIMEOUT_MS = Number(env.CALL_TIMEOUT_MS ?? 15000);

// server-everything's tools, without prefix.
const ECHO = P + 'echo';
const SUM = P + 'get-sum'; // denied to interns
const ENV_TOOL = P + 'get-env'; // excluded by the route: it prints the server's environment
const LIMITED_ALLOWED = [P + 'echo', P + 'get-resource*']; // the interns rule's allow.tools

let failed = 0;
function report(check, ok, detail) {
  if (!ok) failed++;
  const line = { check, ok };
  if (detail !== undefined) line.detail = detail;
  console.log(JSON.stringify(line));
}

function errInfo(e) {
  if (e instanceof McpError) return { class: 'McpError', code: e.code, message: e.message, data: e.data };
  const out = { class: e?.constructor?.name ?? typeof e, message: String(e?.message ?? e) };
  if (e?.code !== undefined) out.code = e.code;
  // StreamableHTTPError carries the HTTP status as code and the body in the message:
  // pull out a JSON-RPC error if the body is one, to say what the gateway answered.
  const m = /\{.*\}/s.exec(out.message);
  if (m) {
    try {
      const body = JSON.parse(m[0]);
      if (body?.error) out.body = body.error;
    } catch {}
  }
  return out;
}

// Runs one check: fn returns a detail (ok) or throws (failed, detail is the error).
async function check(name, fn) {
  try {
    const detail = await fn();
    report(name, true, detail);
    return true;
  } catch (e) {
    report(name, false, e instanceof CheckError ? e.detail : errInfo(e));
    return false;
  }
}

class CheckError extends Error {
  constructor(message, detail) {
    super(message);
    this.detail = detail === undefined ? message : { message, ...detail };
  }
}
function expect(cond, message, detail) {
  if (!cond) throw new CheckError(message, detail);
}

// expectRefused awaits p, which must reject with an McpError whose data.code is code.
async function expectRefused(p, code) {
  let result;
  try {
    result = await p;
  } catch (e) {
    const info = errInfo(e);
    if (!(e instanceof McpError)) {
      throw new CheckError(
        `want an McpError with data.code ${code}; got ${info.class}` +
          (info.body ? ' (the gateway must answer HTTP 200 with the JSON-RPC error for the SDK to surface it as McpError)' : ''),
        { got: info },
      );
    }
    expect(e.data?.code === code, `want data.code ${code}`, { got: info });
    expect(Number.isInteger(e.code), 'want an integer JSON-RPC error code', { got: info });
    return info;
  }
  throw new CheckError(`want an McpError with data.code ${code}; the call succeeded`, { result });
}

function transport(url, key, opts = {}) {
  const headers = key ? { Authorization: 'Bearer ' + key } : {};
  return new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers }, ...opts });
}

async function connect(url, key, name) {
  const t = transport(url, key);
  const c = new Client({ name, version: '1.0.0' });
  await c.connect(t, { timeout: CALL_TIMEOUT_MS });
  return { c, t };
}

function text(result) {
  return (result?.content ?? []).filter(x => x.type === 'text').map(x => x.text).join('\n');
}

function glob(pattern) {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp('^' + re + '$');
}

const opt = { timeout: CALL_TIMEOUT_MS };

async function main() {
  if (!URL1) {
    console.error('GATEWAY_URL is not set');
    process.exit(2);
  }
  if (!DIRECT && (!KEY_FULL || !KEY_LIMITED)) {
    console.error('KEY_FULL and KEY_LIMITED must be set (or DIRECT=1)');
    process.exit(2);
  }

  // Without a key the gateway lets nothing in.
  if (!DIRECT) {
    await check('unauthenticated_refused', async () => {
      const t = transport(URL1, '');
      const c = new Client({ name: 'sluice-e2e-anonymous', version: '1.0.0' });
      try {
        await c.connect(t, opt);
      } catch (e) {
        return errInfo(e);
      }
      await c.close();
      throw new CheckError('initialize without a key succeeded');
    });
  }

  // a. initialize with KEY_FULL, list tools.
  let full;
  const connected = await check('initialize', async () => {
    full = await connect(URL1, KEY_FULL, 'sluice-e2e-full');
    const info = full.c.getServerVersion();
    const caps = full.c.getServerCapabilities();
    expect(info && typeof info.name === 'string' && info.name !== '', 'serverInfo missing', { serverInfo: info });
    expect(caps?.tools, 'server capabilities lack tools', { capabilities: caps });
    expect(full.t.sessionId, 'no Mcp-Session-Id after initialize');
    return { serverInfo: info, protocolVersion: full.t.protocolVersion, capabilities: Object.keys(caps ?? {}) };
  });
  if (!connected) return;

  await check('tools_list', async () => {
    const { tools } = await full.c.listTools(undefined, opt);
    const names = tools.map(t => t.name);
    expect(names.length > 0, 'no tools');
    const unprefixed = names.filter(n => !n.startsWith(P));
    expect(unprefixed.length === 0, `tools without prefix ${P}`, { unprefixed, names });
    for (const want of [ECHO, SUM]) expect(names.includes(want), `${want} missing`, { names });
    if (DIRECT) expect(names.includes(ENV_TOOL), `${ENV_TOOL} missing (DIRECT)`, { names });
    else expect(!names.includes(ENV_TOOL), `${ENV_TOOL} is excluded by the route but listed`, { names });
    return { names };
  });

  // b. call a tool.
  await check('call_echo', async () => {
    const r = await full.c.callTool({ name: ECHO, arguments: { message: 'hello' } }, undefined, opt);
    expect(!r.isError, 'isError result', { result: r });
    expect(text(r).includes('hello'), 'echo result lacks "hello"', { result: r });
    return { text: text(r) };
  });

  await check('call_sum', async () => {
    const r = await full.c.callTool({ name: SUM, arguments: { a: 2, b: 3 } }, undefined, opt);
    expect(!r.isError && text(r).includes('5'), 'get-sum result lacks 5', { result: r });
    return { text: text(r) };
  });

  // The excluded tool cannot be called either, listed or not.
  if (!DIRECT) {
    await check('excluded_tool_call_refused', async () => {
      let r;
      try {
        r = await full.c.callTool({ name: ENV_TOOL, arguments: {} }, undefined, opt);
      } catch (e) {
        return errInfo(e);
      }
      expect(r.isError, `calling ${ENV_TOOL} succeeded`, { result: r });
      expect(!text(r).includes('PATH'), `${ENV_TOOL} printed the environment`, { result: r });
      return { isError: true, text: text(r) };
    });
  }

  // e. resources and prompts.
  await check('resources_list_read', async () => {
    const { resources } = await full.c.listResources(undefined, opt);
    expect(resources.length > 0, 'no resources');
    const first = resources[0];
    const r = await full.c.readResource({ uri: first.uri }, opt);
    expect(r.contents?.length > 0, `readResource ${first.uri}: no contents`, { result: r });
    const c0 = r.contents[0];
    expect(c0.uri && (typeof c0.text === 'string' || typeof c0.blob === 'string'), 'content without text or blob', { content: c0 });
    return { count: resources.length, read: first.uri, chars: (c0.text ?? c0.blob).length };
  });

  await check('resource_templates_list', async () => {
    const { resourceTemplates } = await full.c.listResourceTemplates(undefined, opt);
    return { uriTemplates: resourceTemplates.map(t => t.uriTemplate) };
  });

  await check('prompts_list_get', async () => {
    const { prompts } = await full.c.listPrompts(undefined, opt);
    const names = prompts.map(p => p.name);
    expect(names.length > 0, 'no prompts');
    const unprefixed = names.filter(n => !n.startsWith(P));
    expect(unprefixed.length === 0, `prompts without prefix ${P}`, { unprefixed, names });
    const simple = P + 'simple-prompt';
    expect(names.includes(simple), `${simple} missing`, { names });
    const r = await full.c.getPrompt({ name: simple }, opt);
    expect(r.messages?.length > 0, `getPrompt ${simple}: no messages`, { result: r });
    return { names };
  });

  // f. the session goes on at a second gateway with the same session key: a Client on a
  // transport that already has a session id does not initialize again. With DIRECT=1 and
  // no GATEWAY_URL_2 this resumes the session at the same server, to check the mechanics.
  const url2 = URL2 || (DIRECT ? URL1 : '');
  if (url2) {
    await check('session_second_instance', async () => {
      const t2 = transport(url2, KEY_FULL, { sessionId: full.t.sessionId });
      t2.setProtocolVersion(full.t.protocolVersion);
      const c2 = new Client({ name: 'sluice-e2e-full', version: '1.0.0' });
      try {
        await c2.connect(t2, opt);
        expect(c2.getServerVersion() === undefined, 'the client initialized again');
        const r = await c2.callTool({ name: ECHO, arguments: { message: 'hello again' } }, undefined, opt);
        expect(!r.isError && text(r).includes('hello again'), 'echo on the second instance', { result: r });
        const { tools } = await c2.listTools(undefined, opt);
        expect(tools.some(t => t.name === ECHO), `${ECHO} not listed on the second instance`);
        expect(t2.sessionId === full.t.sessionId, 'the session id changed', { first: full.t.sessionId, second: t2.sessionId });
        return { sessionId: full.t.sessionId.slice(0, 12) + '…', text: text(r) };
      } finally {
        await c2.close(); // aborts only: no DELETE, the session is the first client's
      }
    });
  } else {
    report('session_second_instance', false, 'GATEWAY_URL_2 is not set');
  }

  // c, d. the limited key.
  if (!DIRECT) {
    let lim;
    const limConnected = await check('initialize_limited', async () => {
      lim = await connect(URL1, KEY_LIMITED, 'sluice-e2e-limited');
      return { sessionId: Boolean(lim.t.sessionId) };
    });
    if (limConnected) {
      await check('tools_list_limited', async () => {
        const { tools } = await lim.c.listTools(undefined, opt);
        const names = tools.map(t => t.name);
        const allowed = LIMITED_ALLOWED.map(glob);
        const extra = names.filter(n => !allowed.some(re => re.test(n)));
        expect(extra.length === 0, 'tools listed that the rule does not allow', { extra, names });
        expect(names.includes(ECHO), `${ECHO} missing`, { names });
        expect(!names.includes(SUM), `${SUM} listed`, { names });
        return { names };
      });

      await check('call_denied_tool', async () =>
        expectRefused(lim.c.callTool({ name: SUM, arguments: { a: 1, b: 2 } }, undefined, opt), 'tool_not_allowed'));

      await check('rate_limit', async () => {
        const got = [];
        for (let i = 1; i <= 2; i++) {
          const r = await lim.c.callTool({ name: ECHO, arguments: { message: 'limited ' + i } }, undefined, opt);
          expect(!r.isError && text(r).includes('limited ' + i), `call ${i} of 2 allowed`, { result: r });
          got.push(text(r));
        }
        const refused = await expectRefused(
          lim.c.callTool({ name: ECHO, arguments: { message: 'limited 3' } }, undefined, opt),
          'rate_limit_exceeded',
        );
        return { allowed: got, refused };
      });

      await check('close_limited', async () => {
        await lim.t.terminateSession();
        await lim.c.close();
      });
    }
  }

  // g. the client ends the session with DELETE.
  await check('close', async () => {
    const sid = full.t.sessionId;
    await full.t.terminateSession();
    expect(full.t.sessionId === undefined, 'session id kept after DELETE');
    await full.c.close();
    return { terminated: Boolean(sid) };
  });
}

try {
  await main();
} catch (e) {
  report('harness', false, errInfo(e));
}
console.log(JSON.stringify({ summary: true, failed }));
process.exit(failed ? 1 : 0);
