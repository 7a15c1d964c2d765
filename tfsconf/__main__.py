from tfsconf.cli.app import main

main()
