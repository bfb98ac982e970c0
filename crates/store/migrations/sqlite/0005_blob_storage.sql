-- PostgreSQL only (storage of blob bytes); kept so both databases have the same migrations.
SELECT 1;
