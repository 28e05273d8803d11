/** Renders results as a text table, a markdown table and an SVG chart of the goals. */

const fixed = (value, digits = 0) => (value === null || value === undefined || Number.isNaN(value) ? '—' : value.toFixed(digits));
const thousands = (value) => (value === null || value === undefined || Number.isNaN(value) ? '—' : Math.round(value).toLocaleString('en-US'));

const COLUMNS = [
  ['driver', (row) => row.driver],
  ['ops/s', (row) => thousands(row.opsPerSec)],
  ['MB/s', (row) => fixed(row.mbPerSec, 1)],
  ['p50 µs', (row) => fixed(row.p50Us)],
  ['p99 µs', (row) => fixed(row.p99Us)],
  ['loop p99 ms', (row) => fixed(row.loopDelayP99Ms, 2)],
  ['RSS MiB', (row) => fixed(row.peakRssMb ?? row.rssGrowthMb, 1)],
  ['segwal ÷ this', (row) => fixed(row.ratio, 2)],
];

/** Adds to each row the ratio of the workload's first (segwal) driver to it. */
export function withRatios(workloads, results) {
  return results.map((row) => {
    const headline = workloads.find((workload) => workload.id === row.workload)?.drivers[0];
    const base = results.find((other) => other.workload === row.workload && other.driver === headline);
    const metric = row.workload === 'W5' ? 'mbPerSec' : 'opsPerSec';
    return { ...row, ratio: base && row.driver !== headline ? base[metric] / row[metric] : null };
  });
}

/**
 * Where the CPU went, for the workloads that measure it (S1, S2): per
 * operation, this process, the servers and a ship process, and the cores
 * all of them kept busy. Null for the others.
 */
function cpuLine(rows) {
  const measured = rows.filter((row) => row.serversCpuUsPerOp != null);
  if (measured.length === 0) return null;
  const parts = measured.map((row) => {
    const figures = [`this process ${fixed(row.cpuUsPerOp, 2)}`, `servers ${fixed(row.serversCpuUsPerOp, 2)}`];
    if (row.shipProcessCpuUsPerOp != null) figures.push(`ship process ${fixed(row.shipProcessCpuUsPerOp, 2)}`);
    if (row.coresBusy != null) figures.push(`cores busy ${fixed(row.coresBusy, 2)}`);
    if (row.acknowledgedShare != null) figures.push(`acknowledged ${fixed(100 * row.acknowledgedShare)} %`);
    return `${row.driver}: ${figures.join(', ')}`;
  });
  return `CPU µs per op: ${parts.join('; ')}`;
}

export function textTable(workloads, rows) {
  const lines = [];
  for (const workload of workloads) {
    const own = rows.filter((row) => row.workload === workload.id);
    if (own.length === 0) continue;
    lines.push('', `${workload.id} — ${workload.title}`);
    const cells = [COLUMNS.map(([name]) => name), ...own.map((row) => COLUMNS.map(([, cell]) => cell(row)))];
    const widths = COLUMNS.map((_, i) => Math.max(...cells.map((line) => line[i].length)));
    for (const line of cells) lines.push(line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
    const cpu = cpuLine(own);
    if (cpu !== null) lines.push(cpu);
  }
  return lines.join('\n');
}

export function markdownTable(workloads, rows) {
  const lines = [];
  for (const workload of workloads) {
    const own = rows.filter((row) => row.workload === workload.id);
    if (own.length === 0) continue;
    lines.push('', `**${workload.id}** — ${workload.title}`, '');
    lines.push(`| ${COLUMNS.map(([name]) => name).join(' | ')} |`, `|${COLUMNS.map(() => '---').join('|')}|`);
    for (const row of own) lines.push(`| ${COLUMNS.map(([, cell]) => cell(row)).join(' | ')} |`);
    const cpu = cpuLine(own);
    if (cpu !== null) lines.push('', cpu);
  }
  return lines.join('\n');
}

export function goalLines(goals) {
  return goals.map((goal) => {
    const bound = goal.atLeast !== null ? `≥ ${goal.atLeast}` : `≤ ${goal.atMost}`;
    return `${goal.met ? 'met    ' : 'NOT MET'}  ${goal.label}: ${fixed(goal.value, 2)} (goal ${bound})`;
  });
}

/** A bar per goal: measured value ÷ target, so 1.0 is the line every bar must cross (or stay under, for "at most"). */
export function goalsSvg(goals, caption) {
  const rowHeight = 26;
  const left = 400;
  const width = 900;
  const scaleMax = 3;
  const barWidth = width - left - 60;
  const height = 50 + goals.length * rowHeight + 30;
  const x = (score) => left + (Math.min(score, scaleMax) / scaleMax) * barWidth;
  const bars = goals.map((goal, i) => {
    const target = goal.atLeast ?? goal.atMost;
    const score = goal.atLeast !== null ? goal.value / target : target / goal.value;
    const y = 40 + i * rowHeight;
    const color = goal.met ? '#2e7d32' : '#c62828';
    return [
      `<text x="${left - 8}" y="${y + 14}" text-anchor="end" font-size="10">${escapeXml(goal.label)}</text>`,
      `<rect x="${left}" y="${y + 3}" width="${Math.max(1, x(Number.isFinite(score) ? score : 0) - left)}" height="16" fill="${color}"/>`,
      `<text x="${x(Number.isFinite(score) ? score : 0) + 4}" y="${y + 15}" font-size="11">${fixed(goal.value, 2)}</text>`,
    ].join('');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="14" font-weight="bold">${escapeXml(caption)}</text>`,
    ...bars,
    `<line x1="${x(1)}" y1="34" x2="${x(1)}" y2="${height - 24}" stroke="#333" stroke-dasharray="4 3"/>`,
    `<text x="${x(1)}" y="${height - 8}" text-anchor="middle" font-size="11">goal (bar length = measured ÷ goal, capped at ${scaleMax}×; green = met)</text>`,
    '</svg>',
  ].join('\n');
}

function escapeXml(text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
