-- A run entry says which kind of record it imported (resource_type `user` or
-- `store`): a key limited to users or stores scopes reads the runs of its own
-- kind. Runs recorded before kept it NULL; it follows from their operation,
-- or for a drop file from the file's kind.
UPDATE sync_logs SET resource_type = 'user'
 WHERE run_id IS NULL AND resource_type IS NULL
   AND (operation = 'bulk_user_import' OR operation LIKE 'scim\_user\_%' ESCAPE '\');
UPDATE sync_logs SET resource_type = 'store'
 WHERE run_id IS NULL AND resource_type IS NULL
   AND (operation = 'bulk_store_import' OR operation LIKE 'scim\_group\_%' ESCAPE '\');
UPDATE sync_logs
   SET resource_type = CASE f.kind WHEN 'users' THEN 'user' WHEN 'stores' THEN 'store' END
  FROM drop_files f
 WHERE f.sync_log_id = sync_logs.id
   AND sync_logs.run_id IS NULL AND sync_logs.resource_type IS NULL
   AND sync_logs.operation = 'file_import';
