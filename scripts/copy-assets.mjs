// Build step after tsc: copies the files tsc does not emit (the admin dashboard) from src/ into dist/.
import { cpSync } from 'node:fs';

const outDir = process.argv[2] ?? 'dist';
cpSync('src/admin/dashboard', `${outDir}/admin/dashboard`, { recursive: true });
