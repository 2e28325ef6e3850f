-- Haechi 0.1.0 (15ecf16) schema, written by tests/data/schema-0.1.0-dump.py
CREATE TABLE alembic_version_takedown (
	version_num VARCHAR(32) NOT NULL,
	CONSTRAINT alembic_version_takedown_pkc PRIMARY KEY (version_num)
);
CREATE TABLE notices (
	id INTEGER NOT NULL,
	site VARCHAR(255) NOT NULL,
	language VARCHAR(8) NOT NULL,
	recipient VARCHAR(320) NOT NULL,
	recipient_source VARCHAR(40) NOT NULL,
	subject TEXT NOT NULL,
	body TEXT NOT NULL,
	edited BOOLEAN NOT NULL,
	legal_basis VARCHAR(40) NOT NULL,
	status VARCHAR(20) NOT NULL,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	deadline DATETIME,
	approved_by VARCHAR(100),
	approved_at DATETIME,
	sent_at DATETIME,
	message_id VARCHAR(300),
	attempts INTEGER NOT NULL,
	last_error TEXT,
	PRIMARY KEY (id)
);
CREATE INDEX ix_notices_site_status ON notices (site, status);
CREATE TABLE cases (
	id INTEGER NOT NULL,
	victim VARCHAR(200) NOT NULL,
	image_url TEXT NOT NULL,
	page_url TEXT NOT NULL,
	site VARCHAR(255) NOT NULL,
	algorithm VARCHAR(32) NOT NULL,
	distance INTEGER NOT NULL,
	second FLOAT,
	sha256 VARCHAR(64) NOT NULL,
	media_type VARCHAR(64) NOT NULL,
	server_ip VARCHAR(64),
	headers JSON NOT NULL,
	store_key VARCHAR(200),
	evidence_key VARCHAR(200),
	fetched_at DATETIME NOT NULL,
	detected_at DATETIME NOT NULL,
	status VARCHAR(20) NOT NULL,
	status_at DATETIME NOT NULL,
	signals JSON NOT NULL,
	reupload_of INTEGER,
	notice_id INTEGER,
	first_sent_at DATETIME,
	last_sent_at DATETIME,
	sent_count INTEGER NOT NULL,
	removed_at DATETIME,
	escalated_at DATETIME,
	last_checked_at DATETIME, image_url_sha256 VARCHAR(64),
	PRIMARY KEY (id),
	FOREIGN KEY(reupload_of) REFERENCES cases (id),
	FOREIGN KEY(notice_id) REFERENCES notices (id)
);
CREATE INDEX ix_cases_status ON cases (status);
CREATE INDEX ix_cases_site ON cases (site);
CREATE TABLE false_matches (
	id INTEGER NOT NULL,
	victim VARCHAR(200) NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	decided_by VARCHAR(100) NOT NULL,
	decided_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_false_matches_pair UNIQUE (victim, sha256)
);
CREATE TABLE reviewers (
	name VARCHAR(100) NOT NULL,
	password_hash VARCHAR(200) NOT NULL,
	created_at DATETIME NOT NULL, role VARCHAR(20) DEFAULT 'reviewer' NOT NULL,
	PRIMARY KEY (name)
);
CREATE INDEX ix_cases_victim_url_sha256 ON cases (victim, image_url_sha256);
CREATE TABLE "audit_log" (
	id INTEGER NOT NULL,
	at DATETIME NOT NULL,
	case_id INTEGER,
	notice_id INTEGER,
	actor VARCHAR(100) NOT NULL,
	action VARCHAR(40) NOT NULL,
	detail JSON NOT NULL,
	prev_hash VARCHAR(64) NOT NULL,
	hash VARCHAR(64) NOT NULL,
	seq INTEGER NOT NULL,
	case_prev VARCHAR(64),
	mac VARCHAR(80),
	PRIMARY KEY (id)
);
CREATE INDEX ix_audit_log_case ON audit_log (case_id);
CREATE UNIQUE INDEX ux_audit_log_seq ON audit_log (seq);
CREATE UNIQUE INDEX ux_audit_log_keyed_prev ON audit_log (prev_hash) WHERE case_prev IS NOT NULL;
CREATE TABLE audit_head (
	id INTEGER NOT NULL,
	seq INTEGER NOT NULL,
	hash VARCHAR(64) NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT ck_audit_head_one_row CHECK (id = 1)
);
CREATE TABLE review_sessions (
	id VARCHAR(64) NOT NULL,
	reviewer VARCHAR(100) NOT NULL,
	csrf VARCHAR(64) NOT NULL,
	created_at DATETIME NOT NULL,
	seen_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL,
	clear_views JSON NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(reviewer) REFERENCES reviewers (name) ON DELETE CASCADE
);
CREATE INDEX ix_review_sessions_reviewer ON review_sessions (reviewer);
CREATE TABLE login_throttle (
	scope VARCHAR(10) NOT NULL,
	subject VARCHAR(100) NOT NULL,
	failures INTEGER NOT NULL,
	last_failure_at DATETIME NOT NULL,
	locked_until DATETIME,
	PRIMARY KEY (scope, subject)
);
CREATE TABLE fetched_files (
	id INTEGER NOT NULL,
	url TEXT NOT NULL,
	page_url TEXT NOT NULL,
	site VARCHAR(255) NOT NULL,
	fetched_at DATETIME NOT NULL,
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
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (site)
);
CREATE TABLE victim_hashes (
	id INTEGER NOT NULL,
	victim VARCHAR(200) NOT NULL,
	algorithm VARCHAR(32) NOT NULL,
	code BLOB NOT NULL,
	"view" VARCHAR(40) NOT NULL,
	quality INTEGER NOT NULL,
	source VARCHAR(500) NOT NULL,
	registered_at DATETIME NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_victim_hashes_victim ON victim_hashes (victim);
CREATE INDEX ix_victim_hashes_algorithm_code ON victim_hashes (algorithm, code);
CREATE TABLE seen_hashes (
	id INTEGER NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	second FLOAT NOT NULL,
	code BLOB NOT NULL,
	seen_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_seen_hashes_file_frame UNIQUE (sha256, second)
);
CREATE TABLE grooming_excerpts (
	id INTEGER NOT NULL,
	conversation VARCHAR(64) NOT NULL,
	speaker VARCHAR(64) NOT NULL,
	tier VARCHAR(16) NOT NULL,
	score FLOAT NOT NULL,
	alert JSON NOT NULL,
	created_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_grooming_excerpts_expires_at ON grooming_excerpts (expires_at);
INSERT INTO "alembic_version_takedown" VALUES ('0004');
INSERT INTO "audit_head" VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
