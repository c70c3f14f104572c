// backends/schema: zod building blocks that several backends' config schemas share.

import { z } from 'zod';
import { isLabel } from '../model/names.ts';

/** A single DNS label, stored lowercase (service names, scopes, tags, port names). */
export const labelSchema = z
  .string()
  .transform((s) => s.toLowerCase())
  .refine(isLabel, { message: 'must be a single DNS label (letters, digits, "-", "_"; at most 63 characters)' });

/** Optional backend name; defaults to the type in the registry. */
export const backendNameSchema = z
  .string()
  .regex(/^[a-zA-Z0-9_.-]{1,64}$/, { message: 'must be 1-64 characters of letters, digits, ".", "_", "-"' })
  .optional();
