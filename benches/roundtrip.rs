fn main() {
    println!("{}", echo::echo_x());
}
