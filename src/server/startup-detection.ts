const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b[@-_]/g;

export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

/** Matchers for `startup.done` (docs/protocol.md W7.2): `regex:` prefix compiles a regular expression. */
export function compileDoneMatchers(done: string[]): ((line: string) => boolean)[] {
  return done
    .filter((d) => d.length > 0)
    .map((d) => {
      if (d.startsWith('regex:') && d.length > 6) {
        try {
          const re = new RegExp(d.slice(6));
          return (line: string) => re.test(line);
        } catch {
          return (line: string) => line.includes(d);
        }
      }
      return (line: string) => line.includes(d);
    });
}
