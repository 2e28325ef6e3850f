-- Haechi 0.1.0 (15ecf16) schema, written by tests/data/schema-0.1.0-dump.py
-- after takedown's revisions 0001-0004
CREATE TABLE fetched_files (
	id SERIAL NOT NULL,
	url TEXT NOT NULL,
	page_url TEXT NOT NULL,
	site VARCHAR(255) NOT NULL,
	fetched_at TIMESTAMP WITH TIME ZONE NOT NULL,
	status INTEGER NOT NULL,
	size INTEGER NOT NULL,
	media_type VARCHAR(64) NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	headers JSON NOT NULL,
	server_ip VARCHAR(64),
	store_key VARCHAR(200),
	PRIMARY KEY (id)
);
CREATE INDEX ix_fetched_files_site ON fetched_files (site);
CREATE INDEX ix_fetched_files_sha256 ON fetched_files (sha256);
CREATE TABLE sites (
	site VARCHAR(255) NOT NULL,
	language VARCHAR(35),
	charset VARCHAR(40),
	contacts JSON NOT NULL,
	preferred_languages JSON NOT NULL,
	security_txt_url TEXT,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (site)
);
CREATE TABLE victim_hashes (
	id SERIAL NOT NULL,
	victim VARCHAR(200) NOT NULL,
	algorithm VARCHAR(32) NOT NULL,
	code BYTEA NOT NULL,
	view VARCHAR(40) NOT NULL,
	quality INTEGER NOT NULL,
	source VARCHAR(500) NOT NULL,
	registered_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_victim_hashes_victim ON victim_hashes (victim);
CREATE INDEX ix_victim_hashes_algorithm_code ON victim_hashes (algorithm, code);
CREATE TABLE seen_hashes (
	id SERIAL NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	second FLOAT NOT NULL,
	code BYTEA NOT NULL,
	seen_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_seen_hashes_file_frame UNIQUE (sha256, second)
);
CREATE TABLE grooming_excerpts (
	id SERIAL NOT NULL,
	conversation VARCHAR(64) NOT NULL,
	speaker VARCHAR(64) NOT NULL,
	tier VARCHAR(16) NOT NULL,
	score FLOAT NOT NULL,
	alert JSON NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_grooming_excerpts_expires_at ON grooming_excerpts (expires_at);
