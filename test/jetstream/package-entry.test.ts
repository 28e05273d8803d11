import { describe, expect, it } from 'vitest';
import { ROOT, runNode, type ChildResult } from '../helpers/child.js';

/** A resolve hook that refuses every `@nats-io/*` import, as on an install without them. */
const WITHOUT_NATS_CLIENTS =
  'data:text/javascript,export async function resolve(specifier, context, next) {' +
  ' if (specifier.startsWith("@nats-io/")) throw new Error("not installed: " + specifier);' +
  ' return next(specifier, context); }';

/** Runs an ES module in a fresh node process inside the package, so `segwal` resolves to itself through package.json's exports. */
function runInPackage(body: string, { withoutNatsClients }: { withoutNatsClients: boolean }): Promise<ChildResult> {
  const hook = withoutNatsClients ? `import { register } from 'node:module';\nregister(${JSON.stringify(WITHOUT_NATS_CLIENTS)});\n` : '';
  return runNode(['--input-type=module', '-e', `${hook}${body}`], ROOT);
}

describe('package entries', () => {
  it("'segwal' loads without the NATS clients, which are optional peer dependencies", async () => {
    const run = await runInPackage("const segwal = await import('segwal'); console.log(typeof segwal.Wal);", {
      withoutNatsClients: true,
    });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('function');
  });

  it("'segwal/jetstream' is the subpath that needs them", async () => {
    const body = "const j = await import('segwal/jetstream'); console.log(Object.keys(j).sort().join(' '));";
    const missing = await runInPackage(body, { withoutNatsClients: true });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('not installed: @nats-io/');
    const present = await runInPackage(body, { withoutNatsClients: false });
    expect(present.stderr).toBe('');
    expect(present.stdout.trim().split(' ')).toEqual(
      expect.arrayContaining(['connectJetStream', 'ensureStream', 'publishMessage', 'lastMessageOnSubject', 'readStream']),
    );
  });
});
