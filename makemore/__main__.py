from makemore.cli import main

main()
