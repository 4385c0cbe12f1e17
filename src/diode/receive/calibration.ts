/**
 * Calibration runs, receiver side. A calibration file (its manifest says which step of which
 * run, and the link rate it was sent at: `tacmesh diode calibrate`) is received as any file
 * is — the same tags, FEC, part file and hash — then removed instead of delivered. Each step's
 * outcome goes into `<stateDir>/calibration.json`, rewritten after every step: whether it
 * arrived whole, the rate it arrived at, and what the receiver dropped itself meanwhile; and
 * the highest step rate sustained — that step and every slower one whole, with nothing dropped
 * by the receiver. The file, copied to the sender (`link.calibration`), makes it warn when its
 * configured rate is above what the pair sustained (there is no return path to carry it).
 */
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { diodeLog as log } from '../../shared/log.js';
import type { AuditLog } from '../audit.js';
import { type CalibrationRecord, type CalibrationStepResult, sustained } from '../calibration-record.js';
import type { Manifest } from '../protocol/file-frames.js';

export interface LocalLoss {
  drops: number;
  fecFailed: number;
}

export class CalibrationRecorder {
  private record: CalibrationRecord | undefined;
  private readonly started = new Map<number, { at: number; loss: LocalLoss }>();

  constructor(
    private readonly file: string,
    /** What the receiver has dropped itself so far. */
    private readonly loss: () => LocalLoss,
    private readonly audit: AuditLog,
  ) {}

  /** A calibration file's manifest was taken (its transfer begins). */
  opened(m: Manifest): void {
    this.started.set(m.id, { at: performance.now(), loss: this.loss() });
  }

  /** A calibration file is over: whole (its hash checked), or not, with why. */
  finished(m: Manifest, outcome: { whole: boolean; error?: string }): void {
    const c = m.calibration;
    if (!c) return;
    const start = this.started.get(m.id);
    this.started.delete(m.id);
    const now = this.loss();
    const seconds = start ? (performance.now() - start.at) / 1000 : 0;
    const result: CalibrationStepResult = {
      step: c.step,
      rateMbit: c.rateMbit,
      whole: outcome.whole,
      mbit: outcome.whole && seconds > 0 ? Math.round((m.size * 8) / seconds / 1e5) / 10 : null,
      localDrops: start ? now.drops - start.loss.drops : 0,
      fecFailed: start ? now.fecFailed - start.loss.fecFailed : 0,
      ...(outcome.error ? { error: outcome.error } : {}),
    };
    if (this.record?.run !== c.run)
      this.record = { run: c.run, at: new Date().toISOString(), steps: [], of: c.steps, sustainedMbit: null };
    const r = this.record;
    r.steps = [...r.steps.filter((s) => s.step !== c.step), result].sort((a, b) => a.step - b.step);
    r.sustainedMbit = sustained(r.steps);
    try {
      writeFileAtomic(this.file, `${JSON.stringify(r, null, 2)}\n`);
    } catch (err) {
      log.error({ err, file: this.file }, 'cannot write the calibration');
    }
    this.audit.write('calibration-step', { ...result, run: c.run, of: c.steps });
    log.info({ ...result, run: c.run, of: c.steps }, 'calibration step');
    if (r.steps.length === c.steps)
      log.info(
        { run: c.run, file: this.file, sustainedMbit: r.sustainedMbit },
        `calibration done: this receiver sustained ${r.sustainedMbit ?? 'none of the'} Mbit/s; copy ${this.file} to the sender (link.calibration)`,
      );
  }
}
