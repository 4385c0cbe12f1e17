/**
 * The result of a calibration run (`tacmesh diode calibrate`), as the receiver writes it
 * (receive/calibration.ts) and the sender reads it (a copy, `link.calibration`: there is no
 * return path): per step, the rate the sender paced at and whether the receiver took all of
 * it; and the highest rate the pair sustained.
 */
import { readFileSync } from 'node:fs';

/** Where in the receiver's stateDir the last calibration's results are. */
export const CALIBRATION_FILE = 'calibration.json';

export interface CalibrationStepResult {
  step: number;
  /** The link rate the sender paced the step at. */
  rateMbit: number;
  whole: boolean;
  /** Goodput of the step's file, from its manifest to its last chunk. */
  mbit: number | null;
  /** Datagrams the receiver dropped itself while the step's file came (overload.ts). */
  localDrops: number;
  fecFailed: number;
  error?: string;
}

export interface CalibrationRecord {
  run: string;
  at: string;
  steps: CalibrationStepResult[];
  /** Steps of the run (the last may still be to come). */
  of: number;
  /** The highest step rate sustained, with every slower step; null if not even the first was. */
  sustainedMbit: number | null;
}

/** The highest step rate that, with every slower step, arrived whole and without local drops. */
export function sustained(steps: CalibrationStepResult[]): number | null {
  let best: number | null = null;
  for (const s of [...steps].sort((a, b) => a.rateMbit - b.rateMbit)) {
    if (!s.whole || s.localDrops > 0) break;
    best = s.rateMbit;
  }
  return best;
}

/** The calibration in `file`; throws with the reason when it cannot be read as one. */
export function readCalibration(file: string): CalibrationRecord {
  const r = JSON.parse(readFileSync(file, 'utf8')) as CalibrationRecord;
  if (typeof r?.run !== 'string' || !Array.isArray(r.steps) || typeof r.of !== 'number')
    throw new Error(`${file} is not a calibration`);
  return r;
}

/**
 * What the sender should be told at its start about `rateMbit` against the calibration in
 * `file`: undefined when the rate is within what the pair sustained.
 */
export function calibrationWarning(rateMbit: number, file: string): string | undefined {
  let r: CalibrationRecord;
  try {
    r = readCalibration(file);
  } catch (err) {
    return `no calibration to check link.rateMbit against (${(err as Error).message}): run tacmesh diode calibrate`;
  }
  const done = r.steps.length === r.of ? '' : ` (only ${r.steps.length} of its ${r.of} steps arrived)`;
  if (r.sustainedMbit === null)
    return `the last calibration (${r.at}) sustained no rate at all${done}: the receiver may lose files at ${rateMbit} Mbit/s`;
  if (rateMbit > r.sustainedMbit)
    return `link.rateMbit ${rateMbit} is above the ${r.sustainedMbit} Mbit/s the last calibration sustained (${r.at}${done}): the receiver may be overloaded and lose files; lower the rate or calibrate again`;
  return undefined;
}
