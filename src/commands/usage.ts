// The error a command throws for bad arguments: cli.ts prints it with the help and exits 2.

export class CommandUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandUsageError';
  }
}
