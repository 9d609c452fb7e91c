//! Vendor token formats: secrets that announce themselves by a documented
//! prefix (`ghp_`, `sk-ant-api03-`, `dop_v1_`, `SG.`…), each with the
//! alphabet and length its vendor documents.
//!
//! Every format's prefix is a trigger in the trigger automaton that runs
//! over every string anyway ([`crate::detect`]), so a string without one
//! costs nothing more; three prefixes too common as text (`SK`, `key-`,
//! `-us`, whose bodies are hex) are looked for only in strings with eight
//! digits or more. At a trigger the formats whose prefix starts there
//! are checked: the case of the prefix (where the vendor fixes it), the
//! body's alphabet and length, a word boundary on both sides, and for some
//! a structural check (a separator at a fixed place, a fixed suffix).
//!
//! Sources: each vendor's documentation of its token format where it
//! publishes one, and the gitleaks rule of the same name
//! (`config/gitleaks.toml`, github.com/gitleaks/gitleaks), whose regular
//! expressions encode those formats; `source` names both. Examples of
//! every format are in `crates/masking/tests/vendors.rs`.

use std::ops::Range;

use crate::detect::Detector;

/// Which bytes a token body (or lead) may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alphabet {
    /// `A-Z a-z 0-9`.
    Alnum,
    /// `A-Z a-z`.
    Letters,
    /// `0-9 a-f` (lower case).
    LowerHex,
    /// `0-9 a-f A-F`.
    Hex,
    /// `0-9 A-Z`.
    UpperAlnum,
    /// `0-9 a-z`.
    LowerAlnum,
    /// `A-Z a-z 0-9 _`.
    Word,
    /// `A-Z a-z 0-9 _ -` (base64url).
    Url,
    /// base64url and `.`.
    UrlDot,
    /// `A-Z a-z 0-9 + / =` (base64).
    B64,
    /// `A-Z a-z 0-9 % + / =` (base64, URL-encoded or not).
    B64Pct,
    /// base64url, `/` and `@`: the path of a webhook URL.
    Path,
    /// hex digits and `-`.
    HexDash,
    /// The bech32 alphabet, upper case (age keys).
    Bech32Upper,
    /// `0-9`.
    Digits,
}

impl Alphabet {
    pub(crate) fn has(self, c: u8) -> bool {
        match self {
            Alphabet::Alnum => c.is_ascii_alphanumeric(),
            Alphabet::Letters => c.is_ascii_alphabetic(),
            Alphabet::LowerHex => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
            Alphabet::Hex => c.is_ascii_hexdigit(),
            Alphabet::UpperAlnum => c.is_ascii_digit() || c.is_ascii_uppercase(),
            Alphabet::LowerAlnum => c.is_ascii_digit() || c.is_ascii_lowercase(),
            Alphabet::Word => c.is_ascii_alphanumeric() || c == b'_',
            Alphabet::Url => c.is_ascii_alphanumeric() || c == b'_' || c == b'-',
            Alphabet::UrlDot => c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'),
            Alphabet::B64 => c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='),
            Alphabet::B64Pct => c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'%'),
            Alphabet::Path => c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'/' | b'@'),
            Alphabet::HexDash => c.is_ascii_hexdigit() || c == b'-',
            Alphabet::Bech32Upper => b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".contains(&c),
            Alphabet::Digits => c.is_ascii_digit(),
        }
    }
}

/// One documented token format.
#[derive(Debug)]
pub(crate) struct Format {
    /// A stable name (the gitleaks rule id where there is one).
    pub id: &'static str,
    /// Which detector reports it.
    pub detector: Detector,
    /// The literal prefix.
    pub prefix: &'static str,
    /// Whether the prefix's case is fixed (most are) or free.
    pub exact_case: bool,
    /// Whether the prefix is too common a string to be a trigger in the
    /// automaton (`SK`, `key-`, `-us`): such formats, all of them hex
    /// digits, are looked for only in strings with eight digits or more.
    pub hex_gated: bool,
    /// Bytes that belong to the token *before* the prefix: alphabet, and
    /// the fewest and most of them.
    pub lead: Option<(Alphabet, usize, usize)>,
    /// The body after the prefix.
    pub body: Alphabet,
    /// Fewest and most body bytes.
    pub len: (usize, usize),
    /// A structural check of the whole token, if the alphabet and length
    /// are not enough.
    pub check: Option<fn(&[u8]) -> bool>,
    /// Where the format is documented.
    pub source: &'static str,
}

const fn f(
    id: &'static str,
    detector: Detector,
    prefix: &'static str,
    body: Alphabet,
    len: (usize, usize),
    source: &'static str,
) -> Format {
    Format {
        id,
        detector,
        prefix,
        exact_case: true,
        hex_gated: false,
        lead: None,
        body,
        len,
        check: None,
        source,
    }
}

impl Format {
    const fn hex_gated(mut self) -> Format {
        self.hex_gated = true;
        self
    }
    const fn lead(mut self, a: Alphabet, min: usize, max: usize) -> Format {
        self.lead = Some((a, min, max));
        self
    }
    const fn check(mut self, c: fn(&[u8]) -> bool) -> Format {
        self.check = Some(c);
        self
    }
    const fn any_case(mut self) -> Format {
        self.exact_case = false;
        self
    }
}

use Alphabet as A;
use Detector as D;

const GL: &str = "gitleaks";

/// Every format, most specific prefix first where two share a start.
pub(crate) const FORMATS: &[Format] = &[
    // GitHub: docs.github.com, "About authentication to GitHub" (token
    // prefixes); github.blog 2021-04-05 "Behind GitHub's new
    // authentication token formats" (36 base62 characters, with a CRC).
    f("github-pat", D::GithubToken, "ghp_", A::Word, (30, 255), GL),
    f(
        "github-oauth",
        D::GithubToken,
        "gho_",
        A::Word,
        (30, 255),
        GL,
    ),
    f(
        "github-app-token-user",
        D::GithubToken,
        "ghu_",
        A::Word,
        (30, 255),
        GL,
    ),
    f(
        "github-app-token-server",
        D::GithubToken,
        "ghs_",
        A::Word,
        (30, 255),
        GL,
    ),
    f(
        "github-refresh-token",
        D::GithubToken,
        "ghr_",
        A::Word,
        (30, 255),
        GL,
    ),
    f(
        "github-fine-grained-pat",
        D::GithubToken,
        "github_pat_",
        A::Word,
        (30, 255),
        GL,
    ),
    // GitLab: docs.gitlab.com, "Token prefixes".
    f(
        "gitlab-pat",
        D::GitlabToken,
        "glpat-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "gitlab-oauth-app-secret",
        D::GitlabToken,
        "gloas-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "gitlab-deploy-token",
        D::GitlabToken,
        "gldt-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "gitlab-runner-auth-token",
        D::GitlabToken,
        "glrt-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "gitlab-cicd-job-token",
        D::GitlabToken,
        "glcbt-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "gitlab-pipeline-trigger-token",
        D::GitlabToken,
        "glptt-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "gitlab-feed-token",
        D::GitlabToken,
        "glft-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "gitlab-incoming-mail-token",
        D::GitlabToken,
        "glimt-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "gitlab-kubernetes-agent-token",
        D::GitlabToken,
        "glagent-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "gitlab-scim-token",
        D::GitlabToken,
        "glsoat-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "gitlab-feature-flag-client-token",
        D::GitlabToken,
        "glffct-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "gitlab-runner-registration-token",
        D::GitlabToken,
        "GR1348941",
        A::Url,
        (20, 255),
        GL,
    ),
    // Slack: api.slack.com, "Token types".
    f(
        "slack-bot-token",
        D::SlackToken,
        "xoxb-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "slack-legacy-workspace-token",
        D::SlackToken,
        "xoxa-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "slack-user-token",
        D::SlackToken,
        "xoxp-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "slack-refresh-token",
        D::SlackToken,
        "xoxr-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "slack-legacy-token",
        D::SlackToken,
        "xoxs-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "slack-config-access-token",
        D::SlackToken,
        "xoxe.xoxp-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "slack-config-refresh-token",
        D::SlackToken,
        "xoxe-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "slack-app-token",
        D::SlackToken,
        "xapp-",
        A::Url,
        (20, 255),
        GL,
    ),
    f(
        "slack-webhook-url",
        D::SlackToken,
        "hooks.slack.com/services/",
        A::Path,
        (30, 255),
        GL,
    ),
    f(
        "slack-workflow-webhook-url",
        D::SlackToken,
        "hooks.slack.com/workflows/",
        A::Path,
        (30, 255),
        GL,
    ),
    // Stripe: docs.stripe.com, "API keys" and "Webhook signatures".
    f(
        "stripe-secret-key-live",
        D::StripeKey,
        "sk_live_",
        A::Alnum,
        (16, 255),
        GL,
    ),
    f(
        "stripe-secret-key-test",
        D::StripeKey,
        "sk_test_",
        A::Alnum,
        (16, 255),
        GL,
    ),
    f(
        "stripe-restricted-key-live",
        D::StripeKey,
        "rk_live_",
        A::Alnum,
        (16, 255),
        GL,
    ),
    f(
        "stripe-restricted-key-test",
        D::StripeKey,
        "rk_test_",
        A::Alnum,
        (16, 255),
        GL,
    ),
    f(
        "stripe-webhook-secret",
        D::StripeKey,
        "whsec_",
        A::Alnum,
        (24, 255),
        GL,
    ),
    // Google: cloud.google.com, "API keys" (AIza + 35); OAuth client
    // secrets (GOCSPX-) and access tokens (ya29.).
    f("gcp-api-key", D::GoogleApiKey, "AIza", A::Url, (35, 35), GL),
    f(
        "gcp-oauth-client-secret",
        D::ApiToken,
        "GOCSPX-",
        A::Url,
        (28, 28),
        GL,
    ),
    f(
        "gcp-oauth-access-token",
        D::ApiToken,
        "ya29.",
        A::UrlDot,
        (30, 2048),
        GL,
    ),
    // OpenAI: platform.openai.com, "API keys" (project, service-account
    // and admin keys; legacy user keys hold "T3BlbkFJ").
    f(
        "openai-project-key",
        D::ApiToken,
        "sk-proj-",
        A::Url,
        (40, 255),
        GL,
    ),
    f(
        "openai-service-account-key",
        D::ApiToken,
        "sk-svcacct-",
        A::Url,
        (40, 255),
        GL,
    ),
    f(
        "openai-admin-key",
        D::ApiToken,
        "sk-admin-",
        A::Url,
        (40, 255),
        GL,
    ),
    f(
        "anthropic-api-key",
        D::ApiToken,
        "sk-ant-api03-",
        A::Url,
        (90, 110),
        GL,
    )
    .check(ends_aa),
    f(
        "anthropic-admin-key",
        D::ApiToken,
        "sk-ant-admin01-",
        A::Url,
        (90, 110),
        GL,
    )
    .check(ends_aa),
    f(
        "openai-api-key",
        D::ApiToken,
        "T3BlbkFJ",
        A::Alnum,
        (20, 20),
        GL,
    )
    .lead(A::Url, 23, 23)
    .check(openai_legacy),
    // Hugging Face: huggingface.co/docs/hub/security-tokens.
    f(
        "huggingface-access-token",
        D::ApiToken,
        "hf_",
        A::Letters,
        (34, 34),
        GL,
    ),
    f(
        "huggingface-org-token",
        D::ApiToken,
        "api_org_",
        A::Letters,
        (34, 34),
        GL,
    ),
    // Package registries: docs.npmjs.com "About access tokens"; pypi.org
    // "API tokens" (macaroons, "pypi-AgEIcHlwaS5vcmc"); docs.docker.com
    // "Personal access tokens"; guides.rubygems.org; clojars.org.
    f(
        "npm-access-token",
        D::ApiToken,
        "npm_",
        A::Alnum,
        (36, 36),
        GL,
    ),
    f(
        "pypi-upload-token",
        D::ApiToken,
        "pypi-AgEIcHlwaS5vcmc",
        A::Url,
        (50, 2048),
        GL,
    ),
    f(
        "docker-hub-pat",
        D::ApiToken,
        "dckr_pat_",
        A::Url,
        (27, 64),
        "docs.docker.com",
    ),
    f(
        "docker-hub-oat",
        D::ApiToken,
        "dckr_oat_",
        A::Url,
        (27, 64),
        "docs.docker.com",
    ),
    f(
        "rubygems-api-token",
        D::ApiToken,
        "rubygems_",
        A::LowerHex,
        (48, 48),
        GL,
    ),
    f(
        "clojars-api-token",
        D::ApiToken,
        "CLOJARS_",
        A::LowerAlnum,
        (60, 60),
        GL,
    )
    .any_case(),
    // Twilio: twilio.com/docs/iam/api-keys (API key SIDs: SK + 32 hex).
    f(
        "twilio-api-key",
        D::ApiToken,
        "SK",
        A::LowerHex,
        (32, 32),
        GL,
    )
    .hex_gated(),
    // SendGrid: docs.sendgrid.com, "API keys" (SG.<22>.<43>).
    f(
        "sendgrid-api-token",
        D::ApiToken,
        "SG.",
        A::UrlDot,
        (66, 66),
        GL,
    )
    .check(sendgrid),
    // Mailgun: documentation.mailgun.com, "API keys" (key- + 32 hex).
    f(
        "mailgun-private-api-token",
        D::ApiToken,
        "key-",
        A::LowerHex,
        (32, 32),
        GL,
    )
    .hex_gated(),
    // Mailchimp: mailchimp.com/developer, "API keys" (32 hex, -us + dc).
    f(
        "mailchimp-api-key",
        D::ApiToken,
        "-us",
        A::Digits,
        (1, 2),
        GL,
    )
    .hex_gated()
    .lead(A::LowerHex, 32, 32),
    // Brevo (Sendinblue): developers.brevo.com (xkeysib-<64 hex>-<16>).
    f(
        "sendinblue-api-token",
        D::ApiToken,
        "xkeysib-",
        A::Url,
        (81, 81),
        GL,
    ),
    // Azure: learn.microsoft.com, storage "Manage account access keys"
    // (AccountKey=, 64 bytes in base64) and "Grant limited access with
    // shared access signatures" (sig=, an HMAC-SHA256 in base64); Entra
    // ID client secrets (3 characters, a digit, "Q~", 31-34 more).
    f(
        "azure-storage-account-key",
        D::ApiToken,
        "AccountKey=",
        A::B64,
        (88, 88),
        GL,
    )
    .any_case()
    .check(b64_padded),
    f(
        "azure-sas-signature",
        D::ApiToken,
        "sig=",
        A::B64Pct,
        (43, 64),
        "learn.microsoft.com",
    )
    .any_case()
    .check(sas_sig),
    f(
        "azure-ad-client-secret",
        D::ApiToken,
        "Q~",
        A::UrlDot,
        (31, 34),
        GL,
    )
    .lead(A::UrlDot, 4, 4)
    .check(azure_ad),
    // Heroku: devcenter.heroku.com, "Authentication" (HRKU-AA + 58).
    f(
        "heroku-api-key-v2",
        D::ApiToken,
        "HRKU-AA",
        A::Url,
        (58, 58),
        GL,
    ),
    // DigitalOcean: docs.digitalocean.com, "API tokens" (v1 + 64 hex).
    f(
        "digitalocean-pat",
        D::ApiToken,
        "dop_v1_",
        A::LowerHex,
        (64, 64),
        GL,
    ),
    f(
        "digitalocean-access-token",
        D::ApiToken,
        "doo_v1_",
        A::LowerHex,
        (64, 64),
        GL,
    ),
    f(
        "digitalocean-refresh-token",
        D::ApiToken,
        "dor_v1_",
        A::LowerHex,
        (64, 64),
        GL,
    ),
    // Shopify: shopify.dev, "Access tokens".
    f(
        "shopify-access-token",
        D::ApiToken,
        "shpat_",
        A::Hex,
        (32, 32),
        GL,
    ),
    f(
        "shopify-custom-access-token",
        D::ApiToken,
        "shpca_",
        A::Hex,
        (32, 32),
        GL,
    ),
    f(
        "shopify-private-app-access-token",
        D::ApiToken,
        "shppa_",
        A::Hex,
        (32, 32),
        GL,
    ),
    f(
        "shopify-shared-secret",
        D::ApiToken,
        "shpss_",
        A::Hex,
        (32, 32),
        GL,
    ),
    // Square: developer.squareup.com, "Access tokens".
    f(
        "square-access-token",
        D::ApiToken,
        "sq0atp-",
        A::Url,
        (22, 22),
        GL,
    ),
    f(
        "square-oauth-secret",
        D::ApiToken,
        "sq0csp-",
        A::Url,
        (43, 43),
        GL,
    ),
    f(
        "square-access-token-v2",
        D::ApiToken,
        "EAAA",
        A::Url,
        (60, 60),
        GL,
    ),
    // HashiCorp: developer.hashicorp.com, Vault "Tokens" (hvs., hvb.);
    // Terraform Cloud API tokens (14 characters, ".atlasv1.", 60-70).
    f(
        "vault-service-token",
        D::ApiToken,
        "hvs.",
        A::Url,
        (90, 255),
        GL,
    ),
    f(
        "vault-batch-token",
        D::ApiToken,
        "hvb.",
        A::Url,
        (90, 255),
        GL,
    ),
    f(
        "hashicorp-tf-api-token",
        D::ApiToken,
        ".atlasv1.",
        A::Url,
        (60, 70),
        GL,
    )
    .lead(A::Alnum, 14, 14),
    // Databricks: docs.databricks.com, "Personal access tokens".
    f(
        "databricks-api-token",
        D::ApiToken,
        "dapi",
        A::LowerHex,
        (32, 32),
        GL,
    ),
    // New Relic: docs.newrelic.com, "API keys".
    f(
        "new-relic-user-api-key",
        D::ApiToken,
        "NRAK-",
        A::UpperAlnum,
        (27, 27),
        GL,
    ),
    f(
        "new-relic-insert-key",
        D::ApiToken,
        "NRII-",
        A::Url,
        (32, 32),
        GL,
    ),
    f(
        "new-relic-browser-api-token",
        D::ApiToken,
        "NRJS-",
        A::LowerHex,
        (19, 19),
        GL,
    ),
    // Atlassian: support.atlassian.com, "Manage API tokens" (ATATT3…);
    // Bitbucket app passwords (ATBB).
    f(
        "atlassian-api-token",
        D::ApiToken,
        "ATATT3",
        A::B64,
        (180, 200),
        GL,
    ),
    f(
        "atlassian-connect-token",
        D::ApiToken,
        "ATCTT3",
        A::B64,
        (180, 200),
        GL,
    ),
    f(
        "bitbucket-app-password",
        D::ApiToken,
        "ATBB",
        A::Alnum,
        (32, 40),
        GL,
    ),
    // Postman: learning.postman.com, "API keys" (PMAK-<24 hex>-<34 hex>).
    f(
        "postman-api-token",
        D::ApiToken,
        "PMAK-",
        A::HexDash,
        (59, 59),
        GL,
    )
    .check(postman),
    // Linear: linear.app/developers.
    f(
        "linear-api-key",
        D::ApiToken,
        "lin_api_",
        A::Alnum,
        (40, 40),
        GL,
    ),
    // Grafana: grafana.com/docs, cloud and service-account tokens.
    f(
        "grafana-cloud-api-token",
        D::ApiToken,
        "glc_",
        A::B64,
        (32, 400),
        GL,
    ),
    f(
        "grafana-service-account-token",
        D::ApiToken,
        "glsa_",
        A::Word,
        (41, 41),
        GL,
    ),
    // Sentry: docs.sentry.io, "Auth tokens".
    f(
        "sentry-org-token",
        D::ApiToken,
        "sntrys_",
        A::B64,
        (80, 400),
        GL,
    ),
    f(
        "sentry-user-token",
        D::ApiToken,
        "sntryu_",
        A::LowerHex,
        (64, 64),
        GL,
    ),
    // Doppler: docs.doppler.com, "Token formats".
    f(
        "doppler-personal-token",
        D::ApiToken,
        "dp.pt.",
        A::Alnum,
        (40, 48),
        GL,
    ),
    f(
        "doppler-service-token",
        D::ApiToken,
        "dp.st.",
        A::UrlDot,
        (40, 80),
        GL,
    ),
    f(
        "doppler-cli-token",
        D::ApiToken,
        "dp.ct.",
        A::Alnum,
        (40, 48),
        GL,
    ),
    f(
        "doppler-service-account-token",
        D::ApiToken,
        "dp.sa.",
        A::Alnum,
        (40, 48),
        GL,
    ),
    // Pulumi: pulumi.com/docs, "Access tokens".
    f(
        "pulumi-api-token",
        D::ApiToken,
        "pul-",
        A::LowerHex,
        (40, 40),
        GL,
    ),
    // Fly.io: fly.io/docs, "Access tokens".
    f(
        "flyio-access-token",
        D::ApiToken,
        "fo1_",
        A::Url,
        (43, 43),
        GL,
    ),
    f(
        "flyio-macaroon",
        D::ApiToken,
        "fm2_",
        A::B64,
        (100, 4096),
        GL,
    ),
    // age: age-encryption.org/v1 (Bech32, HRP "AGE-SECRET-KEY-").
    f(
        "age-secret-key",
        D::ApiToken,
        "AGE-SECRET-KEY-1",
        A::Bech32Upper,
        (58, 58),
        GL,
    ),
    // Alibaba Cloud: alibabacloud.com, "AccessKey pairs".
    f(
        "alibaba-access-key-id",
        D::ApiToken,
        "LTAI",
        A::Alnum,
        (20, 20),
        GL,
    ),
    // Dynatrace: docs.dynatrace.com, "Access tokens" (dt0c01.<24>.<64>).
    f(
        "dynatrace-api-token",
        D::ApiToken,
        "dt0c01.",
        A::UrlDot,
        (89, 89),
        GL,
    )
    .check(dynatrace),
    // EasyPost: easypost.com/docs, "API keys".
    f(
        "easypost-api-token",
        D::ApiToken,
        "EZAK",
        A::Alnum,
        (54, 54),
        GL,
    ),
    f(
        "easypost-test-api-token",
        D::ApiToken,
        "EZTK",
        A::Alnum,
        (54, 54),
        GL,
    ),
    // Frame.io, Flutterwave, Notion, PlanetScale, Prefect, ReadMe,
    // Scalingo, Shippo, Typeform, Duffel, Adobe, Infracost, Contentful:
    // each vendor's API documentation, and gitleaks' rule of that name.
    f(
        "frameio-api-token",
        D::ApiToken,
        "fio-u-",
        A::Url,
        (64, 64),
        GL,
    ),
    f(
        "flutterwave-secret-key",
        D::ApiToken,
        "FLWSECK-",
        A::Url,
        (34, 34),
        GL,
    )
    .check(flutterwave),
    f(
        "flutterwave-secret-key-test",
        D::ApiToken,
        "FLWSECK_TEST-",
        A::Url,
        (34, 34),
        GL,
    )
    .check(flutterwave),
    f(
        "notion-api-token",
        D::ApiToken,
        "ntn_",
        A::Alnum,
        (46, 46),
        GL,
    ),
    f(
        "planetscale-api-token",
        D::ApiToken,
        "pscale_tkn_",
        A::UrlDot,
        (32, 64),
        GL,
    ),
    f(
        "planetscale-password",
        D::ApiToken,
        "pscale_pw_",
        A::UrlDot,
        (32, 64),
        GL,
    ),
    f(
        "planetscale-oauth-token",
        D::ApiToken,
        "pscale_oauth_",
        A::UrlDot,
        (32, 64),
        GL,
    ),
    f(
        "prefect-api-token",
        D::ApiToken,
        "pnu_",
        A::Alnum,
        (36, 36),
        GL,
    ),
    f(
        "readme-api-token",
        D::ApiToken,
        "rdme_",
        A::LowerAlnum,
        (70, 70),
        GL,
    ),
    f(
        "scalingo-api-token",
        D::ApiToken,
        "tk-us-",
        A::Url,
        (48, 48),
        GL,
    ),
    f(
        "shippo-api-token",
        D::ApiToken,
        "shippo_live_",
        A::LowerHex,
        (40, 40),
        GL,
    ),
    f(
        "shippo-test-api-token",
        D::ApiToken,
        "shippo_test_",
        A::LowerHex,
        (40, 40),
        GL,
    ),
    f(
        "typeform-api-token",
        D::ApiToken,
        "tfp_",
        A::UrlDot,
        (59, 59),
        GL,
    ),
    f(
        "duffel-api-token",
        D::ApiToken,
        "duffel_live_",
        A::Url,
        (43, 43),
        GL,
    ),
    f(
        "duffel-test-api-token",
        D::ApiToken,
        "duffel_test_",
        A::Url,
        (43, 43),
        GL,
    ),
    f(
        "adobe-client-secret",
        D::ApiToken,
        "p8e-",
        A::Hex,
        (32, 32),
        GL,
    ),
    f(
        "infracost-api-token",
        D::ApiToken,
        "ico-",
        A::Alnum,
        (32, 32),
        GL,
    ),
    f(
        "contentful-pat",
        D::ApiToken,
        "CFPAT-",
        A::Url,
        (43, 43),
        GL,
    ),
    // 1Password: developer.1password.com, service-account tokens.
    f(
        "1password-service-account-token",
        D::ApiToken,
        "ops_eyJ",
        A::B64,
        (250, 8192),
        GL,
    ),
    // Webhook URLs whose path is the secret.
    f(
        "discord-webhook-url",
        D::ApiToken,
        "discord.com/api/webhooks/",
        A::Path,
        (60, 255),
        GL,
    ),
    f(
        "discordapp-webhook-url",
        D::ApiToken,
        "discordapp.com/api/webhooks/",
        A::Path,
        (60, 255),
        GL,
    ),
    f(
        "microsoft-teams-webhook-url",
        D::ApiToken,
        ".webhook.office.com/webhookb2/",
        A::Path,
        (60, 400),
        GL,
    ),
    // Telegram: core.telegram.org/bots/api (bot id ":" 35 characters).
    f(
        "telegram-bot-api-token",
        D::ApiToken,
        ":AA",
        A::Url,
        (33, 33),
        GL,
    )
    .lead(A::Digits, 8, 10),
    // Mapbox: docs.mapbox.com, "Access tokens" (secret ones: sk.eyJ).
    f(
        "mapbox-secret-token",
        D::ApiToken,
        "sk.eyJ",
        A::UrlDot,
        (80, 400),
        GL,
    ),
    // Supabase: supabase.com/docs, "API keys" and access tokens.
    f(
        "supabase-access-token",
        D::ApiToken,
        "sbp_",
        A::LowerHex,
        (40, 40),
        GL,
    ),
    // JFrog: jfrog.com/help, API keys and reference tokens.
    f("jfrog-api-key", D::ApiToken, "AKCp", A::Alnum, (69, 69), GL),
    f(
        "jfrog-reference-token",
        D::ApiToken,
        "cmVmdGtu",
        A::Alnum,
        (56, 56),
        GL,
    ),
    // AI platforms: console.groq.com, replicate.com, docs.perplexity.ai,
    // docs.x.ai ("API keys").
    f("groq-api-key", D::ApiToken, "gsk_", A::Alnum, (52, 52), GL),
    f(
        "replicate-api-token",
        D::ApiToken,
        "r8_",
        A::Alnum,
        (37, 37),
        GL,
    ),
    f(
        "perplexity-api-key",
        D::ApiToken,
        "pplx-",
        A::Alnum,
        (48, 48),
        GL,
    ),
    f("xai-api-key", D::ApiToken, "xai-", A::Alnum, (80, 80), GL),
    // Cloudflare: developers.cloudflare.com, Origin CA keys.
    f(
        "cloudflare-origin-ca-key",
        D::ApiToken,
        "v1.0-",
        A::HexDash,
        (171, 171),
        GL,
    ),
    // Tailscale: tailscale.com/kb, "API access tokens" and auth keys.
    f(
        "tailscale-key",
        D::ApiToken,
        "tskey-",
        A::Url,
        (30, 128),
        "tailscale.com/kb/1101",
    ),
    // Pinecone, LangSmith, Render, Buildkite, CircleCI, SonarQube.
    f(
        "pinecone-api-key",
        D::ApiToken,
        "pcsk_",
        A::Url,
        (50, 100),
        "docs.pinecone.io",
    ),
    f(
        "langsmith-api-key",
        D::ApiToken,
        "lsv2_",
        A::Word,
        (40, 64),
        "docs.smith.langchain.com",
    ),
    f(
        "render-api-key",
        D::ApiToken,
        "rnd_",
        A::Alnum,
        (32, 32),
        "render.com/docs/api",
    ),
    f(
        "buildkite-api-token",
        D::ApiToken,
        "bkua_",
        A::LowerHex,
        (40, 40),
        GL,
    ),
    f(
        "circleci-pat",
        D::ApiToken,
        "CCIPAT_",
        A::Url,
        (40, 80),
        "circleci.com/docs",
    ),
    f(
        "sonarqube-user-token",
        D::ApiToken,
        "squ_",
        A::LowerHex,
        (40, 40),
        GL,
    ),
    f(
        "sonarqube-project-token",
        D::ApiToken,
        "sqp_",
        A::LowerHex,
        (40, 40),
        GL,
    ),
    f(
        "sonarqube-analysis-token",
        D::ApiToken,
        "sqa_",
        A::LowerHex,
        (40, 40),
        GL,
    ),
];

fn ends_aa(t: &[u8]) -> bool {
    t.ends_with(b"AA")
}

/// Legacy OpenAI user keys: `sk-` + 20 + "T3BlbkFJ" (base64 of "OpenAI")
/// + 20 (the trigger is the marker in the middle).
fn openai_legacy(t: &[u8]) -> bool {
    t.starts_with(b"sk-") && t[3..23].iter().all(u8::is_ascii_alphanumeric)
}

/// `SG.` + 22 + `.` + 43.
fn sendgrid(t: &[u8]) -> bool {
    t.get(25) == Some(&b'.') && t.iter().filter(|&&c| c == b'.').count() == 2
}

/// `AccountKey=` and base64 of 64 bytes: 86 characters and `==`.
fn b64_padded(t: &[u8]) -> bool {
    t.ends_with(b"==") && !t[11..t.len() - 2].contains(&b'=')
}

/// A SAS signature: base64 of 32 bytes (`…=`, or `%3D` encoded).
fn sas_sig(t: &[u8]) -> bool {
    let v = &t[4..];
    let pct = v.windows(3).any(|w| w.eq_ignore_ascii_case(b"%3D"));
    (v.ends_with(b"=") || pct) && v.iter().any(u8::is_ascii_digit)
}

/// Entra ID client secrets: three characters, a digit, `Q~`.
fn azure_ad(t: &[u8]) -> bool {
    t.get(3).is_some_and(u8::is_ascii_digit)
}

/// `PMAK-` + 24 hex + `-` + 34 hex.
fn postman(t: &[u8]) -> bool {
    t.get(29) == Some(&b'-') && t.iter().filter(|&&c| c == b'-').count() == 2
}

/// `dt0c01.` + 24 + `.` + 64, upper-case alphanumerics.
fn dynatrace(t: &[u8]) -> bool {
    t.get(31) == Some(&b'.')
        && t[7..]
            .iter()
            .all(|&c| c == b'.' || c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// 32 hex, then `-X`.
fn flutterwave(t: &[u8]) -> bool {
    t.ends_with(b"-X")
        && t[t.len() - 34..t.len() - 2]
            .iter()
            .all(u8::is_ascii_hexdigit)
}

/// Every vendor format: its id, the name of the detector that reports it,
/// its prefix and where it is documented (for tests and the coverage
/// table in docs/design/masking.md).
pub fn formats() -> impl Iterator<Item = (&'static str, &'static str, &'static str, &'static str)> {
    FORMATS
        .iter()
        .map(|f| (f.id, f.detector.name(), f.prefix, f.source))
}

/// The longest trigger: longer prefixes are triggered by their first
/// [`TRIGGER_MAX`] bytes, and the whole prefix is checked where one is
/// found. Fewer automaton states: the per-byte table stays small.
pub(crate) const TRIGGER_MAX: usize = 8;

/// The triggers the automaton needs for the formats: the lower-cased
/// prefixes (their first [`TRIGGER_MAX`] bytes) of all but the hex-gated
/// ones.
pub(crate) fn triggers() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in FORMATS.iter().filter(|f| !f.hex_gated) {
        let p = f.prefix.to_ascii_lowercase();
        let t = p[..p.len().min(TRIGGER_MAX)].to_string();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// The first bytes of the hex-gated formats' prefixes (a unit test holds
/// the table to them).
pub(crate) const HEX_GATED_FIRST: [u8; 3] = [b'S', b'k', b'-'];

/// The hex-gated formats in `b`: a prefix common in prose (`SK`, `key-`,
/// `-us`), so not a trigger, and 32 hex digits. The caller looks only in
/// strings with eight digits.
pub(crate) fn find_hex_gated(b: &[u8], f: &mut dyn FnMut(Range<usize>, Detector)) {
    let [g0, g1, g2] = HEX_GATED_FIRST;
    // One SIMD pass for the three first bytes, then the formats that
    // start with the byte found.
    for p in memchr::memchr3_iter(g0, g1, g2, b) {
        for fmt in &INDEX.hex_gated {
            let pre = fmt.prefix.as_bytes();
            if b[p..].starts_with(pre)
                && let Some(r) = token_at(b, p, fmt)
            {
                f(r, fmt.detector);
            }
        }
    }
}

/// [`FORMATS`] grouped for the two searches, each group in table order.
struct Index {
    /// The formats found from a trigger, by their prefix's first byte in
    /// lower case.
    by_first: Vec<Vec<&'static Format>>,
    /// The hex-gated formats.
    hex_gated: Vec<&'static Format>,
}

static INDEX: std::sync::LazyLock<Index> = std::sync::LazyLock::new(|| {
    let mut by_first = vec![Vec::new(); 256];
    let mut hex_gated = Vec::new();
    for fmt in FORMATS {
        if fmt.hex_gated {
            hex_gated.push(fmt);
        } else if let Some(&c) = fmt.prefix.as_bytes().first()
            && let Some(group) = by_first.get_mut(usize::from(c.to_ascii_lowercase()))
        {
            group.push(fmt);
        }
    }
    Index {
        by_first,
        hex_gated,
    }
});

/// The formats found at trigger starts `at` in `b`.
pub(crate) fn find(b: &[u8], at: &[usize], f: &mut dyn FnMut(Range<usize>, Detector)) {
    for &p in at {
        let Some(&first) = b.get(p) else { continue };
        for fmt in &INDEX.by_first[usize::from(first.to_ascii_lowercase())] {
            let pre = fmt.prefix.as_bytes();
            let Some(here) = b.get(p..p + pre.len()) else {
                continue;
            };
            let same = if fmt.exact_case {
                here == pre
            } else {
                here.eq_ignore_ascii_case(pre)
            };
            if !same {
                continue;
            }
            if let Some(r) = token_at(b, p, fmt) {
                f(r, fmt.detector);
                break;
            }
        }
    }
}

/// The token of format `fmt` whose prefix starts at `p`, if the bytes
/// around it fit the format.
fn token_at(b: &[u8], p: usize, fmt: &Format) -> Option<Range<usize>> {
    let mut start = p;
    if let Some((alpha, min, max)) = fmt.lead {
        let mut n = 0;
        while n < max && start > 0 && alpha.has(b[start - 1]) {
            start -= 1;
            n += 1;
        }
        if n < min {
            return None;
        }
    }
    // Not glued to a word on the left ("ci_ghp_…" is rare, but '_' may
    // precede a token).
    if start > 0 && b[start - 1].is_ascii_alphanumeric() {
        return None;
    }
    let body = p + fmt.prefix.len();
    let mut j = body;
    while j < b.len() && j - body < fmt.len.1 && fmt.body.has(b[j]) {
        j += 1;
    }
    let n = j - body;
    if n < fmt.len.0 || (j < b.len() && b[j].is_ascii_alphanumeric()) {
        return None;
    }
    // A body that ran to the longest length and goes on in its alphabet
    // is something longer than this format.
    if n == fmt.len.1 && j < b.len() && fmt.body.has(b[j]) && b[j] != b'.' {
        return None;
    }
    let token = &b[start..j];
    if fmt.check.is_some_and(|c| !c(token)) {
        return None;
    }
    Some(start..j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_gated_prefixes_start_with_the_gate_bytes() {
        assert!(!INDEX.hex_gated.is_empty());
        for fmt in &INDEX.hex_gated {
            let first = fmt.prefix.as_bytes().first().copied().unwrap_or(0);
            assert!(HEX_GATED_FIRST.contains(&first), "{}", fmt.id);
        }
    }
}
