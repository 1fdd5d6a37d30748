-- The console's language for each account: Chinese unless the user
-- switched. Kept with the account, not the browser, so that it follows
-- the user to another machine.
ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT 'zh-CN';
