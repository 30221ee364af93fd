{
  description = "ptb: a declarative, content-addressed experiment runner for LLM post-training";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let pkgs = import nixpkgs { inherit system; };
      in {
        packages.default = pkgs.rustPlatform.buildRustPackage {
          pname = "ptb";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          # The test suite needs a Docker engine and benchmark data packages.
          doCheck = false;
        };

        devShells.default = pkgs.mkShell {
          packages = with pkgs; [
            rustc cargo clippy rustfmt rust-analyzer
            # Container stages and their tests (a registry for digest tests).
            docker docker-distribution busybox
            # Benchmark data packages, HumanEval's sandboxed python, fixtures.
            python311 python311Packages.pip
            util-linux # unshare, for the HumanEval sandbox
            # tests/eval_gpu.rs: Vulkan on the CPU (lavapipe).
            vulkan-loader mesa
          ];
          # Outside NixOS, point VK_ICD_FILENAMES at mesa's lvp_icd.*.json.
          LD_LIBRARY_PATH = pkgs.lib.makeLibraryPath [ pkgs.vulkan-loader ];
        };
      });
}
