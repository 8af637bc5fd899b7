// Request body schemas (zod) for /auth/*, with the email and password rules; also turns zod issues into safe details.
import * as z from 'zod';
import type { Config } from '../config/schema.js';

/** A type-error message that says "is required" when the field is absent. */
function typeError(message: string): (issue: { input?: unknown }) => string {
  return (issue) => (issue.input === undefined ? 'is required' : message);
}

/** RFC 5321 limits a forward path to 254 characters. */
export const MAX_EMAIL_LENGTH = 254;
/** Upper bound on passwords: keeps argon2 input bounded and matches the length users can type reasonably. */
export const MAX_PASSWORD_LENGTH = 128;

/** The config keys the password rules read. */
export type PasswordPolicy = Pick<Config['middleware']['auth'], 'password_min_length' | 'password_require_mixed'>;

/**
 * The detail for a string holding an unpaired UTF-16 surrogate (JSON's "\ud800" escape, or a half-deleted emoji).
 * Such a string has no UTF-8 form: hashing or storing it encodes each unpaired surrogate as U+FFFD, so different
 * passwords ("\ud800", "\udfff", "\ufffd" in the same place) would become the same hash. Refused wherever a
 * password or email enters, instead of being silently replaced.
 */
export const ILL_FORMED_MESSAGE = 'must be well-formed Unicode text (it holds an unpaired UTF-16 surrogate)';

/** Whether `value` is well-formed UTF-16 (no unpaired surrogate), i.e. has one exact UTF-8 encoding. */
export function isWellFormedText(value: string): boolean {
  return (value as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * The form of a password that is hashed and verified (password.ts): NFKC, so composed and decomposed accents, and
 * fullwidth and ASCII letters, are one password. The creation rules judge this form.
 */
export function normalizedPassword(password: string): string {
  return password.normalize('NFKC');
}

/** A lower-case letter, an upper-case letter and a decimal digit, of any script. */
function isMixed(password: string): boolean {
  return /\p{Ll}/u.test(password) && /\p{Lu}/u.test(password) && /\p{Nd}/u.test(password);
}

/** The length the password rules count: characters (code points) of the hashed form, normalizedPassword. */
function hashedLength(password: string): number {
  return [...normalizedPassword(password)].length;
}

const TOO_LONG = `must be at most ${MAX_PASSWORD_LENGTH} characters`;

/** One validation problem, as sent in the 400 body's `details`. Never contains the submitted value. */
export interface FieldIssue {
  readonly field: string;
  readonly message: string;
}

/**
 * An email: trimmed, lower-cased, at most 254 characters, one `@`, a non-empty local part and a dotted domain of
 * letters, digits and hyphens. Deliberately simple: deliverability is not ours to judge, but control characters,
 * spaces and angle brackets (header injection upstream) are refused.
 */
export const emailSchema = z
  .string({ error: typeError('must be a string') })
  // First, so its detail is the one reported (the address pattern below is ASCII-only and would refuse it too).
  .refine(isWellFormedText, ILL_FORMED_MESSAGE)
  .trim()
  .toLowerCase()
  .min(1, 'is required')
  .max(MAX_EMAIL_LENGTH, `must be at most ${MAX_EMAIL_LENGTH} characters`)
  .regex(
    /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    'must be a valid email address',
  );

/** A new password under `policy`: length bounds, optional mixed-character rule, and not the email itself. */
function newPasswordSchema(policy: PasswordPolicy) {
  const tooShort = `must be at least ${policy.password_min_length} characters`;
  // Both bounds count what is hashed (NFKC, see normalizedPassword), never the text as sent: "e" + U+0301 is two
  // code points sent and one character hashed, so 70 accented letters typed decomposed (as some keyboards send them)
  // were refused as over 128, and the ligature "ﬀ" is two characters hashed ("ff"). An ill-formed string has no
  // hashed form: it gets the detail above only.
  let schema = z
    .string({ error: typeError('must be a string') })
    .refine(isWellFormedText, ILL_FORMED_MESSAGE)
    .refine((value) => !isWellFormedText(value) || hashedLength(value) >= policy.password_min_length, tooShort)
    .refine((value) => !isWellFormedText(value) || hashedLength(value) <= MAX_PASSWORD_LENGTH, TOO_LONG);
  if (policy.password_require_mixed) {
    // Judged on the hashed form too, in any script: "ＰＡＳＳword123" (fullwidth capitals) was refused while the same
    // password typed in ASCII, which logs in with it, was accepted; and "Пароль12345" had no letters at all.
    schema = schema.refine((value) => !isWellFormedText(value) || isMixed(normalizedPassword(value)), 'must contain lower-case and upper-case letters and a digit');
  }
  return schema;
}

/** The body schemas, built once from the password policy. */
export interface AuthSchemas {
  readonly register: z.ZodType<{ email: string; password: string }>;
  readonly login: z.ZodType<{ email: string; password: string }>;
  readonly refresh: z.ZodType<{ refresh_token: string }>;
  readonly logout: z.ZodType<{ refresh_token?: string | undefined; all_sessions: boolean }>;
}

const refreshTokenField = z.string({ error: typeError('must be a string') }).min(1, 'is required').max(512, 'is too long');

/** Builds the body schemas for `policy`. Unknown fields are ignored; the returned values are normalised. */
export function createAuthSchemas(policy: PasswordPolicy): AuthSchemas {
  const register = z
    .object({ email: emailSchema, password: newPasswordSchema(policy) }, { error: typeError('must be a JSON object') })
    .superRefine((body, ctx) => {
      // On the normalised password too: the fullwidth spelling of the email is hashed as the email itself.
      const hashed = normalizedPassword(body.password).trim().toLowerCase();
      if (body.password.trim().toLowerCase() === body.email || hashed === body.email) {
        ctx.addIssue({ code: 'custom', path: ['password'], message: 'must not be the email address' });
      }
    });
  // Login does not re-apply the creation rules: a policy tightened later must not lock out existing users. It does
  // refuse ill-formed text: a user created before this rule existed has a hash of U+FFFD where an unpaired surrogate
  // was, and "\ud800" or "\udfff" there would verify against it (the same bytes once encoded).
  const login = z.object(
    {
      email: emailSchema,
      password: z
        .string({ error: typeError('must be a string') })
        .refine(isWellFormedText, ILL_FORMED_MESSAGE)
        .min(1, 'is required')
        // Within the bound as sent (the rule register had before it counted the hashed form, so every password made
        // then still logs in) or as hashed: a password's decomposed spelling is the same password (hashedLength).
        .refine(
          (value) => !isWellFormedText(value) || [...value].length <= MAX_PASSWORD_LENGTH || hashedLength(value) <= MAX_PASSWORD_LENGTH,
          TOO_LONG,
        ),
    },
    { error: typeError('must be a JSON object') },
  );
  const refresh = z.object({ refresh_token: refreshTokenField }, { error: typeError('must be a JSON object') });
  const logout = z
    .object(
      {
        refresh_token: refreshTokenField.optional(),
        all_sessions: z.boolean({ error: typeError('must be a boolean') }).default(false),
      },
      { error: typeError('must be a JSON object') },
    )
    .superRefine((body, ctx) => {
      if (!body.all_sessions && body.refresh_token === undefined) {
        ctx.addIssue({ code: 'custom', path: ['refresh_token'], message: 'is required' });
      }
    });
  return { register, login, refresh, logout };
}

/**
 * Field-level messages from a zod error: the first problem of each field, as path + message only (zod's issues may
 * hold the input, so they are never sent as they are).
 */
export function toFieldIssues(error: z.ZodError): FieldIssue[] {
  const byField = new Map<string, string>();
  for (const issue of error.issues) {
    const field = issue.path.map(String).join('.') || 'body';
    if (!byField.has(field)) byField.set(field, issue.message);
  }
  return [...byField].map(([field, message]) => ({ field, message }));
}
