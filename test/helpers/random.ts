/**
 * A small seeded PRNG (mulberry32): the reliability tests replay a failing
 * case from its printed seed. torture-child.mjs carries its own copy, since it
 * runs as plain JavaScript outside the TypeScript build.
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The seed of a randomized test: the integer in `envVar` when it is set (to
 * replay a run), else a fresh one below `limit`. Either way it is printed
 * with the line that replays it, once per call: one call per test.
 */
export function testSeed(label: string, envVar: string, fresh: () => number, limit = 2 ** 32): number {
  const raw = process.env[envVar];
  let seed: number;
  if (raw === undefined || raw === '') {
    seed = fresh() % limit;
  } else {
    seed = Number(raw);
    if (!Number.isSafeInteger(seed) || seed < 0 || seed >= limit) throw new Error(`${envVar} must be an integer from 0 to ${limit - 1}, not ${raw}`);
  }
  console.log(`${label}: seed ${seed} (replay with ${envVar}=${seed})`);
  return seed;
}
