/**
 * One error class with stable codes (citty's CLIError habit). Every message says what was wrong,
 * where (file, line, field/tensor) and, when we know it, what was expected versus found and a hint.
 */
export type ErrorCode =
  | 'E_BACKEND'
  | 'E_CONFIG'
  | 'E_FORMAT'
  | 'E_SHAPE'
  | 'E_DTYPE'
  | 'E_MISSING'
  | 'E_TOKENIZER'
  | 'E_ARG'
  | 'E_IO'
  | 'E_UNSUPPORTED';

export interface ErrorDetails {
  /** File the problem was found in. */
  file?: string;
  /** 1-based line number in `file`, for text formats. */
  line?: number;
  /** Field, key, tensor or argument name. */
  field?: string;
  expected?: string;
  found?: string;
  /** What the user can do about it. */
  hint?: string;
}

export class CliniloraError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(formatMessage(message, details), options);
    this.name = 'CliniloraError';
    this.code = code;
    this.details = details;
  }
}

function formatMessage(message: string, d: ErrorDetails): string {
  const where: string[] = [];
  if (d.file !== undefined) where.push(d.line !== undefined ? `${d.file}:${d.line}` : d.file);
  if (d.field !== undefined) where.push(`'${d.field}'`);
  let out = where.length > 0 ? `${where.join(' ')}: ${message}` : message;
  if (d.expected !== undefined || d.found !== undefined) {
    out += ` (expected ${d.expected ?? '?'}, found ${d.found ?? '?'})`;
  }
  if (d.hint !== undefined) out += `. Hint: ${d.hint}`;
  return out;
}

/** Throws a CliniloraError with code E_ARG unless `cond` holds. */
export function check(cond: unknown, message: string, details: ErrorDetails = {}, code: ErrorCode = 'E_ARG'): asserts cond {
  if (!cond) throw new CliniloraError(code, message, details);
}
