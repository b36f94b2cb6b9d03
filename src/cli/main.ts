/** The `clinilora` command, thin over the library. */
export async function main(argv: string[]): Promise<number> {
  const [cmd] = argv;
  process.stderr.write(`clinilora: unknown command '${cmd ?? ''}'\n`);
  return 2;
}
