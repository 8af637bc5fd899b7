// A value out of its range, said in the words of the rest of the config errors ("must be at least 1") instead of
// zod's default ("Too small: expected number to be >=1"). Schema rules that carry their own message keep it.
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
