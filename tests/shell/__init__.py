"""The shell: audit chain, canonical JSON, config, database, storage, migrations, backup,
concurrency, gunicorn, load paths, PDF rendering."""
