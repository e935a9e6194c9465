import type { ErrorInfo } from '../interfaces';

const MAX_TEXT = 16_384;

/** What is recorded of a thrown value: name, message, stack and code, bounded in size. */
export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error) {
    const info: ErrorInfo = { name: error.name, message: clip(error.message) };
    if (error.stack) info.stack = clip(error.stack);
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') info.code = code;
    return info;
  }
  return { name: 'Error', message: clip(describeThrown(error)) };
}

function describeThrown(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function clip(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}
