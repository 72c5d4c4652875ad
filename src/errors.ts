// One error type for everything a person can act on: what went wrong, where (file, row, tensor), what to do.
// The worker and the CLI turn these into messages; anything else that escapes is a bug and says so.

export type ErrorCode =
  | 'file' // a file is missing, unreadable, truncated or malformed
  | 'config' // config.json is missing, malformed or describes something we do not support
  | 'tensor' // a tensor is missing, has the wrong shape or dtype
  | 'tokenizer'
  | 'dataset'
  | 'gpu' // no adapter, limits too small, device lost, validation error
  | 'memory' // the job does not fit the adapter
  | 'numeric' // NaN / Inf in loss or gradients
  | 'input' // bad option or argument
  | 'cancelled';

export class GradPruneError extends Error {
  readonly code: ErrorCode;
  /** The file, tensor, row or setting the message is about, when there is one. */
  readonly subject?: string;
  /** What the person can do about it. */
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, opts: { subject?: string; hint?: string; cause?: unknown } = {}) {
    super(opts.hint ? `${message} ${opts.hint}` : message, { cause: opts.cause });
    this.name = 'GradPruneError';
    this.code = code;
    this.subject = opts.subject;
    this.hint = opts.hint;
  }
}

/** A plain-data form of any thrown value, safe to post across the worker boundary. */
export interface ErrorInfo {
  code: ErrorCode | 'internal';
  message: string;
  subject?: string;
}

export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof GradPruneError) return { code: err.code, message: err.message, subject: err.subject };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal', message: `Unexpected error: ${message}. This is a bug in GradPrune Studio; please report it.` };
}
