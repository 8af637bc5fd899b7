// The errors a command words itself: bad arguments (cli.ts prints the help too, exit 2), and a refusal (exit 1).

export class CommandUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandUsageError';
  }
}

/**
 * A refusal the command has worded for the operator (`user ops@example.com not found`): cli.ts prints its message
 * alone, exit 1. The store's own refusals (GatewayError) carry only the admin API's fixed public text (`Not Found`),
 * which does not say what was missing.
 */
export class CommandRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandRefusedError';
  }
}
