-- Email and attachment bytes are stored out of line without compression: most of their size
-- is already compressed (images, archives, base64 of them), compressing them costs the
-- server CPU on every write, and uncompressed values can be read back in slices
-- (large raw emails are read 4 MiB at a time).
ALTER TABLE blobs ALTER COLUMN bytes SET STORAGE EXTERNAL;
