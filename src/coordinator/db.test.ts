import { expect, it } from 'vitest';
import { splitStatements } from './db.ts';
import { MIGRATIONS } from './schema.ts';

it('splits migrations at line-ending semicolons, keeping dollar-quoted function bodies whole', () => {
  const sql = `CREATE TABLE a (x int);
CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  UPDATE a SET x = 1;
  PERFORM 1; -- $tag$ inside a comment is not the closing quote
END
$fn$;
INSERT INTO a VALUES (1);`;
  const statements = splitStatements(sql).map((s) => s.trim());
  expect(statements).toHaveLength(3);
  expect(statements[1]).toMatch(/^CREATE FUNCTION[\s\S]*UPDATE a SET x = 1;[\s\S]*END\n\$fn\$$/);
  expect(statements[2]).toBe('INSERT INTO a VALUES (1)');
  // Every shipped migration splits into statements that each open and close their quotes.
  for (const m of MIGRATIONS)
    for (const s of splitStatements(m)) expect((s.match(/\$fn\$/g) ?? []).length % 2).toBe(0);
});
