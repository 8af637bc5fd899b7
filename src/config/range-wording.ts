// A value out of its range or of its format, said in the words of the rest of the config errors ("must be at least 1",
// "must start with \"/\"") instead of zod's defaults ("Too small: expected number to be >=1", "Invalid string: must
// start with \"/\""). Schema rules that carry their own message keep it.
import type * as z from 'zod';

type RangeIssue = z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig;

/** The reason for a too_small/too_big issue zod worded itself, or undefined (a message of the schema's own). */
export function rangeReason(issue: RangeIssue): string | undefined {
  if (!/^Too (small|big)\b/.test(issue.message)) return undefined;
  const small = issue.code === 'too_small';
  const bound = String(small ? issue.minimum : issue.maximum);
  const inclusive = issue.inclusive !== false;
  if (issue.exact === true) return `must have exactly ${bound} ${unitOf(issue.origin, bound)}`;
  const numeric = issue.origin === 'number' || issue.origin === 'int' || issue.origin === 'bigint';
  const relation = small ? (inclusive ? 'at least' : numeric ? 'greater than' : 'more than') : inclusive ? 'at most' : 'less than';
  switch (issue.origin) {
    case 'number':
    case 'int':
    case 'bigint':
      return `must be ${relation} ${bound}`;
    case 'string':
      return `must be ${relation} ${bound} ${unitOf(issue.origin, bound)} long`;
    default:
      return `must have ${relation} ${bound} ${unitOf(issue.origin, bound)}`;
  }
}

function unitOf(origin: string, bound: string): string {
  const one = bound === '1';
  if (origin === 'string') return one ? 'character' : 'characters';
  return one ? 'entry' : 'entries';
}

/**
 * The reason for a string-format or multiple-of issue zod worded itself ("Invalid string: must start with \"/\""), or
 * undefined (a message of the schema's own, as a regex with its own words).
 */
export function formatReason(issue: z.core.$ZodIssueInvalidStringFormat | z.core.$ZodIssueNotMultipleOf): string | undefined {
  if (issue.code === 'not_multiple_of') return /^Invalid number\b/.test(issue.message) ? `must be a multiple of ${String(issue.divisor)}` : undefined;
  if (!/^Invalid\b/.test(issue.message)) return undefined;
  switch (issue.format) {
    case 'starts_with':
      return `must start with ${JSON.stringify((issue as z.core.$ZodIssueStringStartsWith).prefix)}`;
    case 'ends_with':
      return `must end with ${JSON.stringify((issue as z.core.$ZodIssueStringEndsWith).suffix)}`;
    case 'includes':
      return `must contain ${JSON.stringify((issue as z.core.$ZodIssueStringIncludes).includes)}`;
    default:
      // A pattern or a named format (url, email…) without words of the schema's own: never the pattern itself, which
      // says nothing to someone editing a YAML file.
      return `is not a valid ${issue.format === 'regex' ? 'value here' : issue.format}`;
  }
}
