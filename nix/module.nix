# The NixOS module: `services.steward`.
#
#   imports = [ ./path/to/steward/nix/module.nix ];
#   services.steward = {
#     enable = true;
#     settings.workspace = "/srv/infra";
#     changeSets = true;   # the units may write the workspace: change sets (off by default)
#     timers.health-check = "hourly";
#     onFailureUnits = [ "nginx" "postgresql" ];
#     apiKeyFile = "/run/secrets/anthropic-api-key";
#     # The units' PATH has no claude: name the binary.
#     settings.claude.bin = "/run/current-system/sw/bin/claude";
#   };
#
# Units: `steward-check@GOAL.timer`/`.service` per entry of `timers`, the `steward-onfailure@`
# template that `onFailureUnits` are wired to, and `steward.service` (the daemon, `steward serve`)
# when `webhook.enable` is set (`systemctl reload steward` sends SIGHUP: the daemon reloads its
# config). Secrets never enter the Nix store: files are handed to the units with LoadCredential=.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf types;
  cfg = config.services.steward;
  toml = pkgs.formats.toml { };

  # Directories given as options become the config's keys; `settings` wins over them.
  settings = lib.recursiveUpdate
    ({ state_dir = "/var/lib/steward"; serve.scheduler = cfg.scheduler; }
      // lib.optionalAttrs (cfg.goalsDir != null) { goals_dir = toString cfg.goalsDir; }
      // lib.optionalAttrs (cfg.contextDir != null) { context_dir = toString cfg.contextDir; }
      // lib.optionalAttrs (cfg.knowledgeDir != null) { knowledge_dir = toString cfg.knowledgeDir; })
    cfg.settings;
  configFile = toml.generate "steward.toml" settings;

  steward = "${lib.getExe cfg.package} --config ${configFile}";
  # %d is the unit's credentials directory: each unit reads the key LoadCredential= gave it.
  keyArgs = lib.optionalString (cfg.apiKeyFile != null) " -c claude.api_key_file=%d/anthropic-api-key";

  # Shared by every steward unit: no privileges, a read-only system, state in /var/lib/steward.
  hardening = {
    User = "steward";
    Group = "steward";
    # journalctl for probes, checks and the failure handler, without root.
    SupplementaryGroups = [ "systemd-journal" ];
    StateDirectory = "steward";
    StateDirectoryMode = "0750";
    UMask = "0077";
    NoNewPrivileges = true;
    ProtectSystem = "strict";
    ProtectHome = "read-only";
    PrivateTmp = true;
    PrivateDevices = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    RestrictSUIDSGID = true;
    RestrictRealtime = true;
    LockPersonality = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
    SystemCallArchitectures = "native";
    LoadCredential = lib.optional (cfg.apiKeyFile != null) "anthropic-api-key:${cfg.apiKeyFile}";
    # Change sets write the workspace's git directory (worktrees, branches) and its checkout.
    ReadWritePaths = lib.optional (cfg.changeSets && settings ? workspace) settings.workspace;
  };

  oneshot = description: exec: {
    inherit description;
    after = [ "network-online.target" ];
    wants = [ "network-online.target" ];
    # A goal's own timeout bounds claude; this bounds the run, the lock wait included.
    serviceConfig = hardening // {
      Type = "oneshot";
      ExecStart = exec;
      TimeoutStartSec = "45min";
    };
  };
in
{
  options.services.steward = {
    enable = mkEnableOption "steward, which turns triggers into scoped, recorded Claude Code runs";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The steward package.";
    };

    changeSets = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Let steward's units write the workspace (`settings.workspace`, given as ReadWritePaths=):
        a change set records its worktree and `steward/` branch in the workspace's git directory,
        and applying one fast-forwards the checkout. Off (the default), the workspace stays
        read-only under ProtectSystem=strict: a change goal stops with exit 2 naming
        ReadWritePaths=, and proactive runs without change mode.
      '';
    };

    settings = mkOption {
      type = toml.type;
      default = { };
      example = lib.literalExpression ''
        {
          workspace = "/srv/infra";
          limits.budget_usd = 0.5;
          claude.model = "claude-sonnet-5";
        }
      '';
      description = ''
        steward.toml, as Nix attributes. steward rejects unknown keys, so a typo fails the
        service's start with the file and line, not silently.
      '';
    };

    goalsDir = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "Operator goal templates; add to (and by name override) the bundled goals.";
    };
    contextDir = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "Operator probe and check definitions (`*.toml`).";
    };
    knowledgeDir = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "Operator knowledge notes (`*.md`).";
    };

    timers = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = { health-check = "hourly"; proactive = "Mon *-*-* 07:00:00"; };
      description = "Goals to run on a schedule: goal name to systemd OnCalendar= expression.";
    };
    scheduler = mkOption {
      type = types.bool;
      default = cfg.timers == { };
      defaultText = lib.literalExpression "config.services.steward.timers == { }";
      description = ''
        Whether the daemon fires goals on the `schedule` in their front matter (`serve.scheduler`).
        Off by default when `timers` schedules goals with systemd timers, so no goal runs twice.
        Its random delay per fire is `settings.serve.scheduler_random_delay_secs`.
      '';
    };

    randomizedDelaySec = mkOption {
      type = types.str;
      default = "10min";
      description = "RandomizedDelaySec= of every goal timer, so hosts do not call the model at once.";
    };

    onFailureUnits = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "nginx" "postgresql" ];
      description = ''
        Services (names as in `systemd.services`) that get
        `OnFailure=steward-onfailure@%n.service`: when one fails, steward runs its
        `on-failure` goal for it.
      '';
    };

    apiKeyFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/anthropic-api-key";
      description = ''
        File holding the Anthropic API key, read by systemd (as root) and handed to each steward
        unit with LoadCredential=. A string, not a path, so the key never enters the Nix store.
      '';
    };

    webhook = {
      enable = mkEnableOption "the daemon (`steward serve`) and its Alertmanager webhook listener";
      listen = mkOption {
        type = types.str;
        default = "127.0.0.1:8787";
        description = "Address the webhook listener binds; Alertmanager posts to /hooks/alertmanager.";
      };
      alertmanagerTokenFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = ''
          File holding the bearer token Alertmanager must carry on /hooks/alertmanager (via
          LoadCredential= as `webhook-token-alertmanager`). It opens that endpoint only.
        '';
      };
      genericTokenFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = ''
          File holding the bearer token for /hooks/generic (via LoadCredential= as
          `webhook-token-generic`): a different secret from Alertmanager's, so that the tool
          holding it cannot post as Alertmanager. Unset: that endpoint answers 503.
        '';
      };
      tokenFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = ''
          A token shared by both endpoints, for those without their own (the daemon warns: one
          leaked token then opens both). Prefer alertmanagerTokenFile and genericTokenFile.
        '';
      };
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.all (u: !(lib.hasSuffix ".service" u)) cfg.onFailureUnits;
        message = "services.steward.onFailureUnits takes names as in systemd.services (\"nginx\", not \"nginx.service\").";
      }
      {
        assertion = cfg.webhook.enable -> lib.any (f: f != null)
          [ cfg.webhook.alertmanagerTokenFile cfg.webhook.genericTokenFile cfg.webhook.tokenFile ];
        message = "services.steward.webhook.alertmanagerTokenFile (or genericTokenFile) must be set: the listener accepts only authenticated webhooks.";
      }
      {
        assertion = cfg.changeSets -> settings ? workspace;
        message = "services.steward.changeSets needs settings.workspace: the repository its units may write.";
      }
    ];

    users.users.steward = {
      isSystemUser = true;
      group = "steward";
      home = "/var/lib/steward";
      description = "steward";
    };
    users.groups.steward = { };

    # The operator's CLI reads the same file (`steward runs list`, `steward actions approve`).
    environment.etc."steward/steward.toml".source = configFile;
    environment.systemPackages = [ cfg.package ];

    systemd.services = lib.mkMerge [
      {
        # The instance is the failed unit's full name (`nginx.service`); %i passes it on as
        # systemd spelled it (already escaped; %I would turn `-` into `/`).
        "steward-onfailure@" = oneshot "steward: respond to the failure of %i"
          "${steward} trigger on-failure %i --wait 300${keyArgs}";

        "steward-check@" = oneshot "steward scheduled goal %i"
          "${steward} trigger timer %i --wait 300${keyArgs}";
      }

      (lib.genAttrs cfg.onFailureUnits (_: {
        unitConfig.OnFailure = "steward-onfailure@%n.service";
      }))

      (mkIf cfg.webhook.enable {
        steward = {
          description = "steward daemon (webhooks, queue, runs)";
          wantedBy = [ "multi-user.target" ];
          after = [ "network-online.target" ];
          wants = [ "network-online.target" ];
          serviceConfig = hardening // {
            Type = "notify";
            # The daemon finds each token in its credentials directory by name.
            ExecStart = "${steward} serve --listen ${cfg.webhook.listen}${keyArgs}";
            ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
            WatchdogSec = "60s";
            Restart = "on-failure";
            RestartSec = "10s";
            # The second layer after steward's own: whatever is left in the cgroup dies with it.
            KillMode = "control-group";
            TimeoutStopSec = "90s";
            LoadCredential = hardening.LoadCredential
              ++ lib.optional (cfg.webhook.alertmanagerTokenFile != null)
                "webhook-token-alertmanager:${cfg.webhook.alertmanagerTokenFile}"
              ++ lib.optional (cfg.webhook.genericTokenFile != null)
                "webhook-token-generic:${cfg.webhook.genericTokenFile}"
              ++ lib.optional (cfg.webhook.tokenFile != null) "webhook-token:${cfg.webhook.tokenFile}";
          };
        };
      })
    ];

    systemd.timers = lib.mapAttrs'
      (goal: onCalendar: lib.nameValuePair "steward-check@${goal}" {
        description = "steward scheduled goal ${goal}";
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnCalendar = onCalendar;
          RandomizedDelaySec = cfg.randomizedDelaySec;
          Persistent = true;
        };
      })
      cfg.timers;
  };
}
