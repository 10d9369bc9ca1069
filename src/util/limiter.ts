/**
 * At most `concurrency` tasks at once; up to `maxWaiting` more wait, each at
 * most `maxWaitMs` for its turn. Anything beyond is refused at once
 * (LimiterFull) and a wait that runs out is refused (LimiterTimeout), so a
 * flood of callers costs a bounded queue, never an unbounded one.
 */
export class LimiterFull extends Error {
  constructor(message = "too many tasks waiting") {
    super(message);
    this.name = "LimiterFull";
  }
}

export class LimiterTimeout extends Error {
  constructor(message = "waited too long for a turn") {
    super(message);
    this.name = "LimiterTimeout";
  }
}

export interface LimiterOptions {
  concurrency: number;
  maxWaiting: number;
  maxWaitMs: number;
}

export interface Limiter {
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Tasks running now. */
  running(): number;
  /** Tasks waiting for a turn now. */
  waiting(): number;
}

export function createLimiter({ concurrency, maxWaiting, maxWaitMs }: LimiterOptions): Limiter {
  let running = 0;
  const queue: (() => void)[] = [];

  const release = () => {
    running--;
    const next = queue.shift();
    if (next) next();
  };

  const turn = (): Promise<void> => {
    if (running < concurrency) {
      running++;
      return Promise.resolve();
    }
    if (queue.length >= maxWaiting) return Promise.reject(new LimiterFull());
    return new Promise<void>((resolve, reject) => {
      const go = () => {
        clearTimeout(timer);
        running++;
        resolve();
      };
      const timer = setTimeout(() => {
        const i = queue.indexOf(go);
        if (i >= 0) queue.splice(i, 1);
        reject(new LimiterTimeout());
      }, maxWaitMs);
      queue.push(go);
    });
  };

  return {
    async run(task) {
      await turn();
      try {
        return await task();
      } finally {
        release();
      }
    },
    running: () => running,
    waiting: () => queue.length,
  };
}
