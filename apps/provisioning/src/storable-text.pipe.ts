import { BadRequestException, Injectable, PipeTransform } from '@nestjs/common';

/** A NUL character or an unpaired UTF-16 surrogate: text that PostgreSQL refuses to store. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Refuses, with a 400 that names the field, any body, query or route value holding text PostgreSQL
 * cannot store, before it reaches a query: such input would otherwise fail deep in the database as a
 * 500 (and the failed statement, with its parameters, would be logged).
 */
@Injectable()
export class StorableTextPipe implements PipeTransform {
  transform(value: unknown): unknown {
    const where = findUnstorable(value, '');
    if (where !== undefined)
      throw new BadRequestException(
        `${where || 'the value'} contains text that cannot be stored (a NUL character or an unpaired surrogate).`,
      );
    return value;
  }
}

function findUnstorable(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? path : undefined;
  if (value === null || typeof value !== 'object' || depth > 20) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key;
    if (UNSTORABLE.test(key)) return at;
    const found = findUnstorable(item, at, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}
